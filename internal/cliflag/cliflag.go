// Package cliflag holds the flag.Value types the project's commands
// share (cardharness and the benchmark-ratio checker).
package cliflag

import "strings"

// Repeated collects every value of a repeatable flag as given (a value
// may have commas of its own, as a sweep's --vary KNOB=V1,V2 does).
type Repeated []string

func (r *Repeated) String() string     { return strings.Join(*r, " ") }
func (r *Repeated) Set(s string) error { *r = append(*r, s); return nil }

// List collects a repeatable flag whose values may also be
// comma-separated (--tag a,b --tag c is a, b, c); blanks are dropped.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }
func (l *List) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}
