package scenarios

// Host profiles in sweeps and expect_if (harness/winhost/profiles.go).

func setProfile(opts *Options, p string) {}

func (e *env) hostProfile(host string) string { return "" }

func checkProfileName(p string) error { return nil }
