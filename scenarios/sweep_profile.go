package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cardharness/cardharness/harness/winhost"
)

// Host profiles in sweeps and expect_if (harness/winhost/profiles.go).

// setProfile makes p the profile of the hosts that name none (a sweep's
// variant; a host that names its profile keeps it, as with knobs).
func setProfile(opts *Options, p string) {
	if p != "" {
		opts.HostProfile = p
	}
}

// hostProfile is the profile host runs with.
func (e *env) hostProfile(host string) string {
	if h, ok := e.sc.Hosts[host]; ok && h.Profile != "" {
		return h.Profile
	}
	if e.opts.HostProfile != "" {
		return e.opts.HostProfile
	}
	return winhost.DefaultProfile
}

func checkProfileName(p string) error {
	if slices.Contains(winhost.ProfileNames(), p) {
		return nil
	}
	return fmt.Errorf("unknown host profile %s%s (profiles: %s)", quote(p), didYouMean(p, winhost.ProfileNames()), strings.Join(winhost.ProfileNames(), ", "))
}
