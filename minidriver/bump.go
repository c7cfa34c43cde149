package minidriver

import (
	"context"
	"fmt"

	"github.com/cardharness/cardharness/minidriver/fs"
)

// Bump is a writer's counter-bump policy: how it maintains cardcf around
// the changes it makes (docs/reference/minidriver-semantics.md §1.2-1.3, §2.4).
type Bump int

const (
	// BumpCorrect bumps the counter that covers each change, before the
	// change, inside the same card transaction (what OpenSC's GIDS driver
	// and Base CSP do).
	BumpCorrect Bump = iota
	// BumpNone never touches cardcf: hosts keep serving what they cached.
	BumpNone
	// BumpLate makes the changes, ends the transaction, and bumps in a
	// second transaction: a host that reads in between caches old data
	// under the old counters, and a crash in between loses the bump.
	BumpLate
	// BumpWrongCounter bumps a counter, but not the one that covers the
	// change (files <-> containers; PIN changes bump files).
	BumpWrongCounter
	// BumpResetToZero writes the counters back to zero (a re-personalising
	// tool): with the same cardid, hosts may see "unchanged" counters.
	BumpResetToZero
)

var bumpNames = []string{"correct", "none", "late", "wrong-counter", "reset-to-zero"}

func (b Bump) String() string {
	if int(b) >= 0 && int(b) < len(bumpNames) {
		return bumpNames[b]
	}
	return fmt.Sprintf("Bump(%d)", int(b))
}

// ParseBump reads a policy name as String writes it.
func ParseBump(s string) (Bump, error) {
	for i, n := range bumpNames {
		if n == s {
			return Bump(i), nil
		}
	}
	return 0, fmt.Errorf("unknown bump policy %q (want one of %v)", s, bumpNames)
}

// writer applies a bump policy to the steps of one operation.
type writer struct {
	c       *Card
	ctx     context.Context
	op      string
	pol     Bump
	pending fs.Category // BumpLate: what to bump after the operation
}

// step performs one change covered by the counters in cats.
func (w *writer) step(cats fs.Category, change func() error) error {
	switch w.pol {
	case BumpCorrect:
		if err := w.c.bump(w.ctx, w.op, cats); err != nil {
			return err
		}
	case BumpWrongCounter:
		if err := w.c.bump(w.ctx, w.op, wrongOf(cats)); err != nil {
			return err
		}
	case BumpResetToZero:
		if err := w.c.resetCounters(w.ctx, w.op); err != nil {
			return err
		}
	case BumpLate:
		w.pending |= cats
	case BumpNone:
	}
	return change()
}

func wrongOf(cats fs.Category) fs.Category {
	switch {
	case cats&fs.CategoryFiles != 0:
		return fs.CategoryContainers
	case cats&fs.CategoryContainers != 0:
		return fs.CategoryFiles
	}
	return fs.CategoryFiles
}

// mutate runs an operation that changes the card under policy pol.
func (c *Card) mutate(ctx context.Context, op string, pol Bump, body func(w *writer) error) error {
	w := &writer{c: c, ctx: ctx, op: op, pol: pol}
	if err := c.transaction(ctx, func() error { return body(w) }); err != nil {
		return err
	}
	if w.pending != 0 {
		return c.transaction(ctx, func() error { return c.bump(ctx, op+" (late bump)", w.pending) })
	}
	return nil
}

// CardCF reads cardcf.
func (c *Card) CardCF(ctx context.Context) (fs.CardCF, error) {
	b, err := c.readDO(ctx, "read cardcf", fs.EFEveryoneReadUserWriteAc, fs.DOCardCF)
	if err != nil {
		return fs.CardCF{}, err
	}
	return fs.ParseCardCF(b)
}

// bump is the read-modify-write of cardcf that OpenSC's
// gids_update_cardcf does.
func (c *Card) bump(ctx context.Context, op string, cats fs.Category) error {
	cf, err := c.CardCF(ctx)
	if err != nil {
		return fmt.Errorf("%s: bump %v: %w", op, cats, err)
	}
	cf.Bump(cats)
	return c.writeDO(ctx, op+": bump "+cats.String(), fs.EFEveryoneReadUserWriteAc, fs.DOCardCF, cf.Bytes())
}

func (c *Card) resetCounters(ctx context.Context, op string) error {
	cf, err := c.CardCF(ctx)
	if err != nil {
		return fmt.Errorf("%s: reset counters: %w", op, err)
	}
	cf.PinsFreshness, cf.ContainersFreshness, cf.FilesFreshness = 0, 0, 0
	return c.writeDO(ctx, op+": reset counters", fs.EFEveryoneReadUserWriteAc, fs.DOCardCF, cf.Bytes())
}

// WriteCardCF writes cardcf as given: for tests and fault injection that
// need counters in a particular state.
func (c *Card) WriteCardCF(ctx context.Context, cf fs.CardCF) error {
	return c.transaction(ctx, func() error {
		return c.writeDO(ctx, "write cardcf", fs.EFEveryoneReadUserWriteAc, fs.DOCardCF, cf.Bytes())
	})
}
