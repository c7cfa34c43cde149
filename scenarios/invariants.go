package scenarios

// Card invariants checked after every step and after the scenario.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cardharness/cardharness/minidriver/fs"
)

// checkCounters: cardcf counters only move forward (per card, compared
// with what was seen after the previous step).
func (e *env) checkCounters() error {
	for _, n := range sortedStrings(keysOf(e.cards)) {
		c := e.cards[n]
		if c.gids == nil {
			continue
		}
		b, ok := c.gids.DO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF)
		if !ok {
			continue
		}
		cf, err := fs.ParseCardCF(b)
		if err != nil {
			return fmt.Errorf("card %s: cardcf unreadable: %v", n, err)
		}
		if p := c.lastCF; p != nil {
			if cf.PinsFreshness < p.PinsFreshness || cf.ContainersFreshness < p.ContainersFreshness || cf.FilesFreshness < p.FilesFreshness {
				return fmt.Errorf("card %s: cardcf went back from % X to % X (set invariants: counters_may_go_back: true if the scenario means it)", n, p.Bytes(), cf.Bytes())
			}
		}
		c.lastCF = &cf
	}
	return nil
}

// checkInvariants: cmapfile and keymap agree, at most one default, no
// orphan key files.
func (e *env) checkInvariants() error {
	var problems []string
	for _, n := range sortedStrings(keysOf(e.cards)) {
		c := e.cards[n]
		md, closeFn, err := e.mdClient(c)
		if err != nil {
			problems = append(problems, fmt.Sprintf("card %s: %v", n, err))
			continue
		}
		cmap, err1 := md.Containers(e.ctx)
		km, err2 := md.KeyMap(e.ctx)
		closeFn()
		if err := errors.Join(err1, err2); err != nil {
			problems = append(problems, fmt.Sprintf("card %s: %v", n, err))
			continue
		}
		if err := fs.CheckConsistent(cmap, km); err != nil {
			problems = append(problems, fmt.Sprintf("card %s: cmapfile and keymap disagree: %v", n, err))
		}
		defaults := 0
		for i, r := range cmap {
			if r.IsDefault() && cmap.Valid(i) {
				defaults++
			}
		}
		if defaults > 1 {
			problems = append(problems, fmt.Sprintf("card %s: %d default containers (at most one)", n, defaults))
		}
		if c.gids != nil {
			for _, kref := range c.gids.KeyRefs() {
				i := int(kref) - fs.FirstKeyRef
				if !cmap.Valid(i) {
					problems = append(problems, fmt.Sprintf("card %s: orphan key %02X (no valid cmapfile record %d)", n, kref, i))
				}
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
