package pcsc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// EventKind says what happened in a reader.
type EventKind int

const (
	// CardInserted: a card became present.
	CardInserted EventKind = iota + 1
	// CardRemoved: the card left the reader.
	CardRemoved
)

func (k EventKind) String() string {
	switch k {
	case CardInserted:
		return "inserted"
	case CardRemoved:
		return "removed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one insertion or removal.
type Event struct {
	Reader string
	Kind   EventKind
	ATR    []byte // for insertions
	// Counter is pcsc-lite's per-reader event counter (the upper 16 bits of
	// dwEventState): it moves on every insertion and removal, which is how a
	// removal and reinsertion between two waits is still seen.
	Counter uint16
}

// stateMask keeps the SCARD_STATE_* flags and drops pcsc-lite's event
// counter, which lives in the upper 16 bits (PCSC 1.9.9 winscard_clnt.c).
const stateMask = 0xFFFF

// Watcher reports insertions and removals in a set of readers. It runs
// SCardGetStatusChange on its own PC/SC context: libpcsclite holds the
// context lock for the whole wait, so sharing one would block every other
// call (reference §6 gotcha 2).
type Watcher struct {
	ctx    *scard.Context
	events chan Event
	done   chan struct{}
	errMu  sync.Mutex
	err    error
	once   sync.Once
}

// Watch starts watching readers. Events arrive on Events() until Cancel or
// an error (see Err); the channel is then closed. The current state is
// reported first: a reader that already holds a card yields CardInserted.
func Watch(readers ...string) (*Watcher, error) {
	if len(readers) == 0 {
		return nil, errors.New("pcsc: watch needs at least one reader")
	}
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, &Error{Op: "establish context", Err: hint(err)}
	}
	w := &Watcher{ctx: ctx, events: make(chan Event, 64), done: make(chan struct{})}
	states := make([]scard.ReaderState, len(readers))
	for i, r := range readers {
		states[i] = scard.ReaderState{Reader: r, CurrentState: scard.StateUnaware}
	}
	go w.loop(states)
	return w, nil
}

// Events returns the event channel.
func (w *Watcher) Events() <-chan Event { return w.events }

// Err returns why the watcher stopped (nil after Cancel).
func (w *Watcher) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Cancel stops the watcher and waits for it to finish. SCardCancel does not
// take the context lock, so it interrupts a wait in progress.
func (w *Watcher) Cancel() {
	w.once.Do(func() {
		close(w.done)
		_ = w.ctx.Cancel()
	})
	for range w.events { // drain until loop exits
	}
}

func (w *Watcher) loop(states []scard.ReaderState) {
	defer close(w.events)
	defer w.ctx.Release()
	type last struct {
		present bool
		counter uint16
		known   bool
	}
	prev := make([]last, len(states))
	for {
		// Bounded waits: a Cancel that lands between two waits would
		// otherwise be lost and the next infinite wait would never end.
		err := w.ctx.GetStatusChange(states, 500*time.Millisecond)
		select {
		case <-w.done:
			return
		default:
		}
		if errors.Is(err, scard.ErrTimeout) {
			continue
		}
		if err != nil {
			if errors.Is(err, scard.ErrCancelled) {
				return
			}
			// A reader that disappears or a pcscd that goes away ends the
			// watch with the reason.
			w.errMu.Lock()
			w.err = &Error{Op: "get status change", Err: err}
			w.errMu.Unlock()
			return
		}
		for i := range states {
			st := &states[i]
			ev := uint32(st.EventState)
			present := ev&uint32(scard.StatePresent) != 0
			counter := uint16(ev >> 16)
			p := &prev[i]
			if !p.known {
				if present {
					w.emit(Event{Reader: st.Reader, Kind: CardInserted, ATR: slices.Clone(st.Atr), Counter: counter})
				}
			} else if counter != p.counter || present != p.present {
				// Each insertion and removal moves the counter by one; a gap
				// that leaves the card present hides a remove+insert pair.
				steps := int(counter - p.counter)
				if present == p.present && steps >= 2 {
					if present {
						w.emit(Event{Reader: st.Reader, Kind: CardRemoved, Counter: counter - 1})
						w.emit(Event{Reader: st.Reader, Kind: CardInserted, ATR: slices.Clone(st.Atr), Counter: counter})
					}
				} else if present != p.present {
					if present {
						w.emit(Event{Reader: st.Reader, Kind: CardInserted, ATR: slices.Clone(st.Atr), Counter: counter})
					} else {
						w.emit(Event{Reader: st.Reader, Kind: CardRemoved, Counter: counter})
					}
				}
			}
			*p = last{present: present, counter: counter, known: true}
			st.CurrentState = scard.StateFlag(ev&stateMask) &^ scard.StateChanged
			// Keep the counter in CurrentState so the next wait returns when
			// it moves even if the flags end up the same.
			st.CurrentState |= scard.StateFlag(ev &^ stateMask)
		}
	}
}

func (w *Watcher) emit(e Event) {
	select {
	case w.events <- e:
	case <-w.done:
	}
}

// WaitReaders waits until pcscd lists at least n readers and returns their
// names in pcscd's order.
func (c *Client) WaitReaders(ctx context.Context, n int) ([]string, error) {
	for {
		r, err := c.Readers()
		if err != nil {
			return nil, err
		}
		if len(r) >= n {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, &Error{Op: "wait for readers", Err: fmt.Errorf("%d of %d readers after waiting: %w", len(r), n, ctx.Err())}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitPresent waits until every named reader holds a card.
func (c *Client) WaitPresent(ctx context.Context, readers ...string) error {
	return c.waitCards(ctx, true, readers)
}

// WaitAbsent waits until pcscd reports no card in any of the readers (a
// reused stack's slots, emptied between scenarios: the next card is then
// a fresh insertion to pcscd, not a card it never saw leave).
func (c *Client) WaitAbsent(ctx context.Context, readers ...string) error {
	return c.waitCards(ctx, false, readers)
}

func (c *Client) waitCards(ctx context.Context, present bool, readers []string) error {
	states := make([]scard.ReaderState, len(readers))
	for i, r := range readers {
		states[i] = scard.ReaderState{Reader: r, CurrentState: scard.StateUnaware}
	}
	for {
		// Short waits instead of Cancel: this context is shared, and a
		// bounded wait keeps it usable when ctx ends.
		err := c.ctx.GetStatusChange(states, 200*time.Millisecond)
		if err != nil && !errors.Is(err, scard.ErrTimeout) {
			return &Error{Op: "wait for cards", Err: err}
		}
		var missing []string
		for i := range states {
			ev := uint32(states[i].EventState)
			if (ev&uint32(scard.StatePresent) != 0) != present {
				missing = append(missing, states[i].Reader)
			}
			states[i].CurrentState = scard.StateFlag(ev) &^ scard.StateChanged
		}
		if len(missing) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			if !present {
				return &Error{Op: "wait for removal", Err: fmt.Errorf("still a card in %q: %w", missing, ctx.Err())}
			}
			return &Error{Op: "wait for cards", Err: fmt.Errorf("no card in %q: %w", missing, ctx.Err())}
		}
	}
}

// EventCount returns pcsc-lite's event counter of reader (the upper 16 bits
// of its event state, moved by one at each insertion and removal) and
// whether a card is present: how a test sees that pcscd noticed a card
// leave and another arrive.
func (c *Client) EventCount(reader string) (count int, present bool, err error) {
	rs := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	if err := c.ctx.GetStatusChange(rs, 0); err != nil {
		return 0, false, &Error{Op: "get status change", Err: err}
	}
	ev := uint32(rs[0].EventState)
	return int(ev >> 16), ev&uint32(scard.StatePresent) != 0, nil
}
