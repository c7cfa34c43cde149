package scenarios

// The clock and control flow: the virtual clock every host and the CA run
// on, and repeat.
func init() {
	register(&Action{
		Name: "repeat", Actor: ActorScenario,
		Doc:     "run the nested steps: a number of times; ${i} is the round (1..times)",
		Args:    []Arg{{Name: "times", Type: Int, Required: true, Min: "1", Max: itoa(maxRepeat), Doc: "how many rounds"}},
		Example: "{do: repeat, times: 3, steps: [{do: advance, by: 1d}]}",
		Run:     repeatAction,
	}, &Action{
		Name: "advance", Actor: ActorClock,
		Doc:     "advance the virtual clock (runs due certificate propagations)",
		Args:    []Arg{{Name: "by", Type: Duration, Required: true, Max: "36500d", Doc: "how far: 10s, 36h, 3d, 1d12h (not negative)"}},
		Result:  []Field{{Name: "now", Type: String, Doc: "the virtual time after the step (RFC 3339, UTC)"}},
		Example: "{do: advance, by: 10s}",
		Run:     advance,
	})
}

// repeatAction is run by the runner itself (runRepeat), which owns the
// nested steps; the declaration is here for the reference and the parser.
func repeatAction(e *env, s *stepCtx) (Values, error) { return nil, nil }

// advance moves the virtual clock; timers due in between (certificate
// propagation) fire in order.
func advance(e *env, s *stepCtx) (Values, error) {
	e.clock.Advance(s.duration("by"))
	return Values{"now": e.clock.Now().UTC().Format("2006-01-02T15:04:05Z")}, nil
}
