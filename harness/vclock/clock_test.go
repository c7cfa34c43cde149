package vclock

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func TestNowStandsStill(t *testing.T) {
	c := New(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now %v, want %v", c.Now(), t0)
	}
	ran := false
	c.AfterFunc(0, func() { ran = true })
	if ran {
		t.Fatal("AfterFunc(0) ran before any Advance")
	}
	if c.Pending() != 1 {
		t.Fatalf("Pending %d", c.Pending())
	}
	c.Advance(0)
	if !ran || c.Pending() != 0 {
		t.Fatalf("Advance(0): ran=%v pending=%d", ran, c.Pending())
	}
	if !c.Now().Equal(t0) {
		t.Fatal("Advance(0) moved the clock")
	}
}

func TestOrderAndTies(t *testing.T) {
	c := New(t0)
	var got []string
	rec := func(s string) func() {
		return func() { got = append(got, s+"@"+c.Now().Sub(t0).String()) }
	}
	c.AfterFunc(3*time.Second, rec("c"))
	c.AfterFunc(1*time.Second, rec("a1"))
	c.AfterFunc(2*time.Second, rec("b"))
	c.AfterFunc(1*time.Second, rec("a2")) // same due time as a1: scheduling order
	c.AfterFunc(10*time.Second, rec("late"))
	c.Advance(3 * time.Second)
	want := []string{"a1@1s", "a2@1s", "b@2s", "c@3s"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("order (-want +got):\n%s", d)
	}
	if c.Pending() != 1 || !c.Now().Equal(t0.Add(3*time.Second)) {
		t.Fatalf("pending %d now %v", c.Pending(), c.Now())
	}
	if next, ok := c.Next(); !ok || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("Next %v %v", next, ok)
	}
}

func TestCallbackSchedulesCallback(t *testing.T) {
	c := New(t0)
	var got []time.Duration
	c.AfterFunc(time.Second, func() {
		got = append(got, c.Since(t0))
		// Relative to the callback's due time, not to the Advance target.
		c.AfterFunc(time.Second, func() { got = append(got, c.Since(t0)) })
		c.AfterFunc(time.Hour, func() { got = append(got, c.Since(t0)) })
	})
	c.Advance(5 * time.Second)
	if d := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if c.Pending() != 1 {
		t.Fatalf("pending %d", c.Pending())
	}
	if n := c.RunAll(0); n != 1 || c.Since(t0) != time.Hour+time.Second {
		t.Fatalf("RunAll ran %d, now +%v", n, c.Since(t0))
	}
}

func TestStop(t *testing.T) {
	c := New(t0)
	ran := 0
	a := c.AfterFunc(time.Second, func() { ran++ })
	b := c.AfterFunc(2*time.Second, func() { ran += 10 })
	if !a.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if a.Stop() {
		t.Fatal("second Stop returned true")
	}
	if c.Pending() != 1 {
		t.Fatalf("pending %d", c.Pending())
	}
	c.Advance(time.Minute)
	if ran != 10 {
		t.Fatalf("ran %d", ran)
	}
	if b.Stop() {
		t.Fatal("Stop after firing returned true")
	}
	if !b.When().Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("When %v", b.When())
	}
}

func TestStopFromCallback(t *testing.T) {
	c := New(t0)
	var b *Timer
	ran := false
	c.AfterFunc(time.Second, func() { b.Stop() })
	b = c.AfterFunc(2*time.Second, func() { ran = true })
	c.Advance(time.Minute)
	if ran {
		t.Fatal("a timer stopped by an earlier callback ran")
	}
}

func TestAdvanceToPastAndNegative(t *testing.T) {
	c := New(t0)
	c.Advance(time.Hour)
	c.AdvanceTo(t0) // back in time: ignored
	c.Advance(-time.Minute)
	if c.Since(t0) != time.Hour {
		t.Fatalf("time went back: +%v", c.Since(t0))
	}
	ran := false
	c.AfterFunc(-time.Second, func() { ran = true })
	c.AdvanceTo(t0)
	if !ran {
		t.Fatal("a due callback did not run on AdvanceTo(past)")
	}
}

func TestRunAllLimit(t *testing.T) {
	c := New(t0)
	var tick func()
	n := 0
	tick = func() { n++; c.AfterFunc(time.Second, tick) }
	c.AfterFunc(time.Second, tick)
	if got := c.RunAll(5); got != 5 || n != 5 {
		t.Fatalf("RunAll(5) = %d, n=%d", got, n)
	}
	if c.Pending() != 1 {
		t.Fatalf("pending %d", c.Pending())
	}
}

func TestDeterministic(t *testing.T) {
	run := func() []int {
		c := New(t0)
		var got []int
		for i := range 50 {
			d := time.Duration((i*7919)%13) * time.Millisecond
			c.AfterFunc(d, func() { got = append(got, i) })
		}
		c.Advance(time.Second)
		return got
	}
	first := run()
	for range 5 {
		if d := cmp.Diff(first, run()); d != "" {
			t.Fatalf("runs differ:\n%s", d)
		}
	}
}
