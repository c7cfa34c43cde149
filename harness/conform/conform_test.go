package conform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardclean"
	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/conform"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/fault"
	"github.com/cardharness/cardharness/vcard/gids"
)

// Credentials other than the defaults: the suite must use what it is told.
const testPIN = gidstest.OwnPIN

var testAdminKey = gidstest.OwnAdminKey

func newCard(t *testing.T) *gids.Card {
	t.Helper()
	return gidstest.New(t, gids.Options{}, gids.InitParams{PIN: testPIN, AdminKey: testAdminKey})
}

// run serves card through a private pcscd + vpcd and runs conform on it.
func run(t *testing.T, card vcard.Card, opts conform.Options) (*conform.Report, *pcsc.Card) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	st := cardtest.Start(t, card)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	reader := st.Slots()[0].Reader
	conn, err := cardtest.Client(t).Connect(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	opts.PowerCycle = conn.PowerCycle
	return conform.Run(ctx, conn, reader, opts), conn
}

func statuses(r *conform.Report) map[string]conform.Status {
	m := map[string]conform.Status{}
	for _, x := range r.Results {
		m[x.ID] = x.Status
	}
	return m
}

func text(r *conform.Report) string {
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String()
}

func TestConformPassesOnTheProjectsCard(t *testing.T) {
	card := newCard(t)
	key := testAdminKey
	rep, conn := run(t, card, conform.Options{PIN: testPIN, AdminKey: &key, Destructive: true})
	out := text(rep)
	for _, x := range rep.Results {
		if x.Status != conform.Pass {
			t.Errorf("%s: %s %s", x.ID, x.Status, x.Message)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
	if !strings.Contains(out, "destructive run") {
		t.Error("the text report does not say the run wrote to the card")
	}
	// The run removed what it created and left the PIN as it was: the
	// card is still clean.
	ctx := context.Background()
	if err := cardclean.Verify(ctx, conn, cardclean.Config{PIN: testPIN, AdminKey: testAdminKey}); err != nil {
		// cardcf-write bumps a counter on purpose; everything else must be as before.
		var se *cardclean.StateError
		if !asState(err, &se) || len(se.Problems) != 1 || !strings.Contains(se.Problems[0], "cardcf") {
			t.Errorf("after conform: %v", err)
		}
	}
	if refs := card.KeyRefs(); len(refs) != 0 {
		t.Errorf("conform left keys % X", refs)
	}
}

func asState(err error, se **cardclean.StateError) bool {
	e, ok := err.(*cardclean.StateError)
	if ok {
		*se = e
	}
	return ok
}

func TestConformReadOnlyWritesNothing(t *testing.T) {
	card := newCard(t)
	before := snapshot(card)
	rep, _ := run(t, card, conform.Options{}) // no PIN, no admin key, not destructive
	st := statuses(rep)
	for id, want := range map[string]conform.Status{
		"discovery.select-le":    conform.Pass,
		"fs.cardcf":              conform.Pass,
		"acl.write-without-auth": conform.Pass,
		"pin.verify":             conform.NotApplicable,
		"admin.mutual":           conform.NotApplicable,
		"keys.generate-2048":     conform.NotApplicable,
		"persist.power-cycle":    conform.NotApplicable,
	} {
		if st[id] != want {
			t.Errorf("%s: %s, want %s", id, st[id], want)
		}
	}
	if _, ok := st["cleanup"]; ok {
		t.Error("a read-only run has a cleanup step")
	}
	if !rep.OK() {
		t.Errorf("read-only run failed:\n%s", text(rep))
	}
	if after := snapshot(card); after != before {
		t.Errorf("a read-only run changed the card:\n%s\n%s", before, after)
	}
	if !strings.Contains(text(rep), "read-only run") {
		t.Error("the report does not say it was read-only")
	}
}

// snapshot is the card's persistent state as far as a test can see it.
func snapshot(c *gids.Card) string {
	var b strings.Builder
	for _, d := range []struct{ ef, tag uint16 }{{0xA000, 0xDF1F}, {0xA000, 0xDF20}, {0xA010, 0xDF21}, {0xA010, 0xDF22}, {0xA010, 0xDF23}, {0xA012, 0xDF20}} {
		v, ok := c.DO(d.ef, d.tag)
		b.WriteString(strings.TrimSpace(strings.Join([]string{string(rune('0' + btoi(ok))), string(v)}, ":")))
		b.WriteByte('|')
	}
	b.WriteString(string(c.KeyRefs()))
	b.WriteByte(byte('0' + c.PINTriesLeft()))
	return b.String()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sixtyOne is a defect: the card answers a SELECT without Le with 61xx
// (the FCI left for GET RESPONSE), which hosts that sent no Le never fetch.
type sixtyOne struct {
	*gids.Card
	pending []byte
}

func (s *sixtyOne) Process(cmd []byte) []byte {
	if len(cmd) == 14 && cmd[1] == 0xA4 && cmd[2] == 0x04 && cmd[3] == 0x00 { // case 3: no Le
		resp := s.Card.Process(cmd)
		s.pending = resp[:len(resp)-2]
		return []byte{0x61, byte(len(s.pending))}
	}
	if len(cmd) == 5 && cmd[1] == 0xC0 && s.pending != nil {
		out := append(s.pending, 0x90, 0x00)
		s.pending = nil
		return out
	}
	s.pending = nil
	return s.Card.Process(cmd)
}

func TestConformReportsSelectWithoutLeAnswered61xx(t *testing.T) {
	rep, _ := run(t, &sixtyOne{Card: newCard(t)}, conform.Options{})
	var got *conform.Result
	for i := range rep.Results {
		if rep.Results[i].ID == "discovery.select-no-le" {
			got = &rep.Results[i]
		}
	}
	if got == nil || got.Status != conform.Fail {
		t.Fatalf("select-no-le: %+v", got)
	}
	if rep.OK() {
		t.Error("report OK despite a failure")
	}
	if !strings.Contains(got.Message, "61") || !strings.Contains(got.Section, "docs/reference/gids-protocol.md §2.1") {
		t.Errorf("message %q section %q", got.Message, got.Section)
	}
	// The failing APDU is in the report, in every format.
	wantAPDU := "> 00 A4 04 00 09 A0 00 00 03 97 42 54 46 59\n< 61"
	if len(got.Trace) == 0 || !strings.Contains(strings.Join(got.Trace, "\n"), wantAPDU) {
		t.Errorf("trace %q does not show the SELECT and its 61xx", got.Trace)
	}
	if !strings.Contains(text(rep), "FAIL  discovery.select-no-le") {
		t.Errorf("text report:\n%s", text(rep))
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back conform.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.OK() || !strings.Contains(js.String(), "00 A4 04 00 09") {
		t.Errorf("JSON report: %v\n%s", err, js.String())
	}
	var ju bytes.Buffer
	if err := rep.WriteJUnit(&ju); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &suite); err != nil {
		t.Fatal(err)
	}
	if suite.Failures != 1 || suite.Skipped == 0 {
		t.Errorf("JUnit: %d failures, %d skipped", suite.Failures, suite.Skipped)
	}
	for _, c := range suite.Cases {
		if strings.HasPrefix(c.Name, "discovery.select-no-le") && (c.Failure == nil || !strings.Contains(c.Failure.Body, wantAPDU)) {
			t.Errorf("JUnit case %q: %+v", c.Name, c.Failure)
		}
		if strings.HasPrefix(c.Name, "keys.") && (c.Skipped == nil || !strings.Contains(c.Skipped.Message, "--destructive")) {
			t.Errorf("JUnit case %q not skipped with the reason", c.Name)
		}
	}
}

func TestConformReportsDroppedCardCFWrites(t *testing.T) {
	card, err := fault.Wrap(newCard(t), fault.DropCardCFWrites)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := run(t, card, conform.Options{PIN: testPIN, Destructive: true, KeySizes: []int{1024}, Only: []string{"fs.cardcf-write", "acl.write-without-auth"}})
	st := statuses(rep)
	if st["fs.cardcf-write"] != conform.Fail {
		t.Fatalf("cardcf-write: %s\n%s", st["fs.cardcf-write"], text(rep))
	}
	out := text(rep)
	if !strings.Contains(out, "dropped the write") || !strings.Contains(out, "> 00 DB A0 10 09 DF 22 06") {
		t.Errorf("report does not explain the drop with its APDUs:\n%s", out)
	}
}
