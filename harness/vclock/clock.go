// Package vclock is a virtual clock for deterministic scenarios: time stands
// still until the test moves it, and callbacks scheduled with AfterFunc run
// inside Advance/AdvanceTo, in the order of their due time (ties in the order
// they were scheduled), on the caller's goroutine.
//
// Nothing ever happens in the background: a scenario that schedules a
// certificate propagation 2 s after a card insertion sees it only when it
// advances the clock by at least 2 s, and always in the same order. That is
// what DESIGN.md asks of "deterministic when asked": a seed fixes random
// choices, and this clock drives "days later" and propagation delays.
//
// A Clock may be used from several goroutines (its state is locked), but it
// is meant to be driven by one: callbacks run without the lock held, so
// they may schedule, stop and read the clock, and even advance it (a nested
// advance runs what is due by its target and returns).
package vclock

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is a virtual clock. The zero value is not usable; use New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64 // scheduling order, breaks ties between equal due times
	pending timerHeap
}

// New returns a clock reading start.
func New(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the current virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Since is Now().Sub(t).
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Advance moves the clock forward by d, running every callback that falls
// due on the way (see AdvanceTo). A negative d is treated as zero;
// Advance(0) runs the callbacks already due.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.AdvanceTo(c.Now().Add(d))
}

// AdvanceTo moves the clock to t, running the callbacks due at or before t
// in due-time order (ties in scheduling order). While a callback runs, Now
// returns its due time, so a callback that schedules another one relative to
// Now gets the time it would have had on a real clock; a callback scheduled
// by a callback runs in the same AdvanceTo if it falls due by t. Time never
// goes back: a t before Now only runs what is already due.
func (c *Clock) AdvanceTo(t time.Time) {
	for {
		c.mu.Lock()
		if t.Before(c.now) {
			t = c.now
		}
		if len(c.pending) == 0 || c.pending[0].when.After(t) {
			c.now = t
			c.mu.Unlock()
			return
		}
		f := c.popDue()
		c.mu.Unlock()
		f()
	}
}

// popDue takes the earliest pending callback off the queue, marks it
// fired and moves the clock to its due time (never back); the caller holds
// c.mu and runs the callback after releasing it, so that the callback may
// use the clock.
func (c *Clock) popDue() func() {
	tm := heap.Pop(&c.pending).(*Timer)
	tm.index = -1
	tm.fired = true
	if tm.when.After(c.now) {
		c.now = tm.when
	}
	return tm.f
}

// RunDue runs the callbacks that are already due, without moving the clock:
// Advance(0).
func (c *Clock) RunDue() { c.Advance(0) }

// AfterFunc schedules f to run when the clock has advanced by d (d ≤ 0: at
// the next Advance, even Advance(0)). f runs on the goroutine that advances
// the clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) *Timer {
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	tm := &Timer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	heap.Push(&c.pending, tm)
	return tm
}

// Pending returns the number of scheduled callbacks that have neither run
// nor been stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Next returns the due time of the earliest pending callback.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return time.Time{}, false
	}
	return c.pending[0].when, true
}

// RunAll advances to the due time of every pending callback until none is
// left, including those scheduled on the way, and returns how many ran. It
// stops after limit callbacks (limit ≤ 0: no limit) so that a callback that
// keeps rescheduling itself cannot hang a test.
func (c *Clock) RunAll(limit int) int {
	n := 0
	for limit <= 0 || n < limit {
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			return n
		}
		f := c.popDue()
		c.mu.Unlock()
		f()
		n++
	}
	return n
}

// Timer is a callback scheduled with AfterFunc.
type Timer struct {
	c     *Clock
	when  time.Time
	seq   uint64
	f     func()
	index int // position in the heap, -1 once removed
	fired bool
}

// Stop cancels the callback. It reports whether the call stopped it, i.e.
// whether it was still pending (false if it already ran or was stopped).
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 || t.fired {
		return false
	}
	heap.Remove(&t.c.pending, t.index)
	t.index = -1
	return true
}

// When returns the virtual time the callback is (or was) due.
func (t *Timer) When() time.Time { return t.when }

// timerHeap orders timers by due time, then scheduling order.
type timerHeap []*Timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return t
}
