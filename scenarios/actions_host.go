package scenarios

import (
	"github.com/cardharness/cardharness/harness/winhost"
)

// The host: readers, logon and the smart-card service of an emulated
// Windows host.
func init() {
	register(&Action{
		Name: "insert", Actor: ActorHost,
		Doc:     "insert a card into a host (triggers certificate propagation if a user is signed in)",
		Args:    []Arg{argHost, argCard},
		Example: "{do: insert, host: desktop, card: card}",
		Run:     insert,
	}, &Action{
		Name: "remove", Actor: ActorHost,
		Doc:     "remove a card from a host",
		Args:    []Arg{argHost, argCard},
		Errors:  []string{"SCARD_E_NO_SMARTCARD"},
		Example: "{do: remove, host: desktop, card: card}",
		Run:     remove,
	}, &Action{
		Name: "reinsert", Actor: ActorHost,
		Doc:     "remove and insert a card again",
		Args:    []Arg{argHost, argCard},
		Example: "{do: reinsert, host: desktop, card: card}",
		Run:     reinsert,
	}, &Action{
		Name: "logon", Actor: ActorHost,
		Doc:     "sign the user in (triggers propagation for the inserted cards)",
		Args:    []Arg{argHost, {Name: "user", Type: String, Default: "user", Doc: "the user's name (each user has own stores)"}},
		Example: "{do: logon, host: desktop}",
		Run:     logon,
	}, &Action{
		Name: "logoff", Actor: ActorHost,
		Doc:     "sign the user out",
		Args:    []Arg{argHost},
		Example: "{do: logoff, host: desktop}",
		Run:     logoff,
	}, &Action{
		Name: "restart-card-service", Actor: ActorHost,
		Doc:     "restart the smart-card service (the global cache survives per the global_cache_persistent knob)",
		Args:    []Arg{argHost},
		Example: "{do: restart-card-service, host: desktop}",
		Run:     restartCardService,
	}, &Action{
		Name: "set-user-pin", Actor: ActorHost,
		Doc:     "change what the user types at the host's next PIN prompts (the PIN was changed elsewhere, or the user mistypes)",
		Args:    []Arg{argHost, {Name: "pin", Type: String, Required: true, Doc: "the PIN the user will type"}},
		Example: "{do: set-user-pin, host: desktop, pin: \"654321\"}",
		Run:     setUserPIN,
	}, &Action{
		Name: "logon-enumeration", Actor: ActorHost,
		Doc:  "logon-time enumeration of the inserted cards (default container, certificates)",
		Args: []Arg{argHost, {Name: "card", Type: CardName, Doc: "only this card's entry (default: the last one enumerated)"}},
		Result: []Field{
			{Name: "cards", Type: Int, Doc: "how many inserted cards were enumerated"},
			{Name: "usable", Type: Bool, Doc: "the card can be used for sign-in"},
			{Name: "default_container", Type: String, Doc: "the GUID of the container logon uses"},
			{Name: "certificates", Type: Int, Doc: "logon certificates offered from the card"},
		},
		Errors:  []string{"NTE_BAD_KEYSET", "SCARD_E_NO_KEY_CONTAINER", "CRYPT_E_NOT_FOUND"},
		Example: "{do: logon-enumeration, host: desktop, expect: {result: {usable: true}}}",
		Run:     logonEnumeration,
	}, &Action{
		Name: "stats", Actor: ActorHost,
		Doc:  "the host's (or one process's) counters: card reads, cache hits, stale and missed cache items, PIN prompts",
		Args: []Arg{argHost, {Name: "process", Type: String, Doc: "one process's counters instead of the whole host's"}},
		Result: []Field{
			{Name: "card_reads", Type: Int, Doc: "files read from the card"},
			{Name: "cache_hits", Type: Int, Doc: "reads served by the global cache"},
			{Name: "cache_stale", Type: Int, Doc: "cached items found stale by cardcf and read again"},
			{Name: "cache_misses", Type: Int, Doc: "reads with nothing cached"},
			{Name: "pin_prompts", Type: Int, Doc: "PIN prompts shown to the user"},
			{Name: "transactions", Type: Int, Doc: "card transactions"},
		},
		Example: "{do: stats, host: desktop, expect: {result: {pin_prompts: 1}}}",
		Run:     stats,
	})
}

func stats(e *env, s *stepCtx) (Values, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	st := h.Stats()
	if s.has("process") {
		p, err := e.process(s)
		if err != nil {
			return nil, err
		}
		st = p.Stats()
	}
	return Values{"card_reads": st.CardReads, "cache_hits": st.CacheHits, "cache_stale": st.CacheStale,
		"cache_misses": st.CacheMisses, "pin_prompts": st.PINPrompts, "transactions": st.Transactions}, nil
}

func insert(e *env, s *stepCtx) (Values, error) {
	h, c, err := e.hostCard(s)
	if err != nil {
		return nil, err
	}
	return nil, h.InsertCard(e.ctx, c.reader, c.source, c.mdOpts)
}

func remove(e *env, s *stepCtx) (Values, error) {
	h, c, err := e.hostCard(s)
	if err != nil {
		return nil, err
	}
	return nil, h.RemoveCard(c.reader)
}

func reinsert(e *env, s *stepCtx) (Values, error) {
	h, c, err := e.hostCard(s)
	if err != nil {
		return nil, err
	}
	if err := h.RemoveCard(c.reader); err != nil {
		return nil, err
	}
	return nil, h.InsertCard(e.ctx, c.reader, c.source, c.mdOpts)
}

func logon(e *env, s *stepCtx) (Values, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	return nil, h.Logon(e.ctx, s.str("user"), winhost.LogonOptions{})
}

func logoff(e *env, s *stepCtx) (Values, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	h.Logoff()
	return nil, nil
}

func restartCardService(e *env, s *stepCtx) (Values, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	h.RestartCardService()
	return nil, nil
}

// setUserPIN: later prompts on this host answer with pin; PINs already
// cached by processes stay cached (that is what makes "PIN changed
// elsewhere" interesting).
func setUserPIN(e *env, s *stepCtx) (Values, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	h.SetUserPIN(s.str("pin"))
	return nil, nil
}

func logonEnumeration(e *env, s *stepCtx) (Values, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	cards := h.EnumerateLogonCards(e.ctx)
	r := Values{"cards": len(cards)}
	for _, lc := range cards {
		if name := s.str("card"); name != "" && e.cards[name] != nil && lc.Reader != e.cards[name].reader {
			continue
		}
		r["usable"] = lc.Usable
		r["default_container"] = lc.DefaultContainer
		r["certificates"] = len(lc.Certificates)
		if lc.Err != nil {
			return r, lc.Err
		}
	}
	return r, nil
}
