package scenarios

import (
	"encoding/hex"

	"github.com/cardharness/cardharness/minidriver/fs"
)

// The card itself, read or changed directly: no host cache in between.
func init() {
	register(&Action{
		Name: "check-card", Actor: ActorCard,
		Doc:  "read the card directly (no host cache): cardcf counters, containers, default, certificates, free space, PIN tries",
		Args: []Arg{argCard},
		Result: []Field{
			{Name: "cardcf", Type: String, Doc: "the cardcf file (hex)"},
			{Name: "pins_freshness", Type: Int, Doc: "bPinsFreshness"},
			{Name: "containers_freshness", Type: Int, Doc: "wContainersFreshness"},
			{Name: "files_freshness", Type: Int, Doc: "wFilesFreshness"},
			{Name: "cardid", Type: String, Doc: "the cardid (hex)"},
			{Name: "containers", Type: Int, Doc: "valid containers in cmapfile"},
			{Name: "container_records", Type: Int, Doc: "cmapfile records, valid or not"},
			{Name: "guids", Type: List, Doc: "the valid containers' GUIDs, in cmapfile order"},
			{Name: "default", Type: GUID, Doc: "the default container's GUID (empty: none)"},
			{Name: "certificates", Type: Int, Doc: "certificate files (kxcNN/kscNN) in mscp"},
			{Name: "free_containers", Type: Int, Doc: "containers the card still has room for"},
			{Name: "pin_tries", Type: Int, Doc: "user PIN tries left"},
			{Name: "pin_tries_max", Type: Int, Doc: "the user PIN's try limit"},
		},
		Example: "{do: check-card, card: card, expect: {result: {containers: 1, pin_tries: 3}}}",
		Run:     checkCard,
	}, &Action{
		Name: "reinitialize", Actor: ActorCard, Internals: true,
		Doc:     "factory-reset and re-personalise the card (keep-cardid: the bug of S3)",
		Args:    []Arg{argCard, {Name: "keep-cardid", Type: Bool, Default: "false", Doc: "keep the old cardid (what a sloppy re-personalisation does)"}},
		Example: "{do: reinitialize, card: card, keep-cardid: true}",
		Run:     reinitialize,
	})
}

func checkCard(e *env, s *stepCtx) (Values, error) {
	c, err := e.card(s)
	if err != nil {
		return nil, err
	}
	return e.cardState(c)
}

func reinitialize(e *env, s *stepCtx) (Values, error) {
	c, err := e.card(s)
	if err != nil {
		return nil, err
	}
	return nil, e.reinitialize(c, s.bool("keep-cardid"))
}

// cardState reads a card directly, without any host cache.
func (e *env) cardState(c *cardEnv) (Values, error) {
	md, closeFn, err := e.mdClient(c)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	cf, err := md.CardCF(e.ctx)
	if err != nil {
		return nil, err
	}
	cmap, err := md.Containers(e.ctx)
	if err != nil {
		return nil, err
	}
	r := Values{"cardcf": hex.EncodeToString(cf.Bytes()), "pins_freshness": int(cf.PinsFreshness),
		"containers_freshness": int(cf.ContainersFreshness), "files_freshness": int(cf.FilesFreshness),
		"cardid": md.CardID().String()}
	var guids []string
	valid, def := 0, ""
	for i, rec := range cmap {
		if !cmap.Valid(i) {
			continue
		}
		valid++
		guids = append(guids, rec.GUID)
		if rec.IsDefault() {
			def = rec.GUID
		}
	}
	r["containers"] = valid
	r["container_records"] = len(cmap)
	r["guids"] = guids
	r["default"] = def
	files, _ := md.EnumFiles(e.ctx, "mscp")
	certs := 0
	for _, f := range files {
		if _, _, ok := fs.ParseCertFileName(f); ok {
			certs++
		}
	}
	r["certificates"] = certs
	free, _ := md.QueryFreeSpace(e.ctx)
	r["free_containers"] = free.ContainersAvailable
	if left, limit, err := md.PINTries(e.ctx); err == nil {
		r["pin_tries"], r["pin_tries_max"] = left, limit
	}
	return r, nil
}
