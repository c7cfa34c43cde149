package scenarios

// External tools run against the card's reader, with PCSCLITE_CSOCK_NAME
// pointing at the scenario's private pcscd.
func init() {
	register(&Action{
		Name: "tool", Actor: ActorTool,
		Doc: "run an OpenSC/OpenSSL tool against the card's reader (PCSCLITE_CSOCK_NAME set); a non-zero exit is an error",
		Args: []Arg{argCard, {Name: "run", Type: Command, Required: true,
			Doc: "the command: a list [pkcs11-tool, -L] or one string split at spaces; ${var} is substituted"}},
		Result: []Field{
			{Name: "exit", Type: Int, Doc: "the exit status"},
			{Name: "output", Type: String, Doc: "stdout and stderr, interleaved"},
			{Name: "output_contains", Type: String, ExpectOnly: true, Doc: "expect only: the output contains this text"},
		},
		Example: "{do: tool, card: card, run: [pkcs11-tool, --list-objects], expect: {result: {output_contains: alice}}}",
		Run:     tool,
	})
}

func tool(e *env, s *stepCtx) (Values, error) {
	c, err := e.card(s)
	if err != nil {
		return nil, err
	}
	return e.runTool(c, s)
}
