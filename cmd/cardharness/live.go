package main

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cardharness/cardharness/scenarios"
)

// liveLine is the progress line a terminal shows while a run goes on
// ("scenario 7/18, step 12/30"): redrawn in place, cleared before each
// per-scenario line is written so those stay as they were.
type liveLine struct {
	mu    sync.Mutex
	f     *os.File
	shown bool
	last  scenarios.Progress
	// running are the scenarios started and not finished, so that the line
	// falls back to one of them when the one shown finishes.
	running map[string]scenarios.Progress
}

func newLiveLine(f *os.File) *liveLine {
	return &liveLine{f: f, running: map[string]scenarios.Progress{}}
}

func (l *liveLine) update(p scenarios.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.Done {
		delete(l.running, p.Name)
		if l.last.Name != p.Name {
			return
		}
		l.last = scenarios.Progress{}
		for _, q := range l.running {
			if q.Scenario > l.last.Scenario {
				l.last = q
			}
		}
		if l.last.Scenarios == 0 && l.shown {
			fmt.Fprint(l.f, "\r\033[K")
			l.shown = false
		}
		l.draw()
		return
	}
	l.running[p.Name] = p
	l.last = p
	l.draw()
}

func (l *liveLine) draw() {
	if l.last.Scenarios == 0 {
		return
	}
	name := l.last.Name
	if len(name) > 40 {
		name = "..." + name[len(name)-37:]
	}
	fmt.Fprintf(l.f, "\r\033[Kscenario %d/%d, step %d/%d  %s", l.last.Scenario, l.last.Scenarios, l.last.Step, l.last.Steps, name)
	l.shown = true
}

// Write passes the per-scenario lines through, clearing the live line
// first and redrawing it after.
func (l *liveLine) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		fmt.Fprint(l.f, "\r\033[K")
		l.shown = false
	}
	n, err := l.f.Write(b)
	if strings.HasSuffix(string(b), "\n") {
		l.draw()
	}
	return n, err
}

func (l *liveLine) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		fmt.Fprint(l.f, "\r\033[K")
		l.shown = false
	}
	l.last = scenarios.Progress{}
}
