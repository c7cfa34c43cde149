package winhost

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// A host profile is a named bundle of knobs: one Windows version as the
// sources describe it. Scenarios pick one per host (profile:) and override
// knobs one by one; `cardharness run --host-profile NAME` changes the
// default for a whole run. Each profile's differences are rows of the
// fidelity ledger (docs/windows-fidelity.md, "Host profiles").

// DefaultProfile is today's patched Windows.
const DefaultProfile = "windows-11-2025"

// Profile describes one host profile.
type Profile struct {
	Name string
	// Summary says which Windows it stands for and what sets it apart.
	Summary string
	// apply changes the base knobs into the profile's.
	apply func(k *Knobs)
}

// profiles is the table of host profiles. base() holds what every
// profile shares; each entry changes only what differs.
var profiles = []Profile{
	{
		Name: "windows-11-2025",
		Summary: "Windows 11 / Server 2025 with the 2025-10-14 security update (CVE-2024-30098): " +
			"propagation writes the Smart Card KSP into CERT_KEY_PROV_INFO for every certificate",
		apply: func(k *Knobs) {},
	},
	{
		Name: "windows-10-legacy",
		Summary: "Windows 10/11 before the 2025-10-14 update: propagation writes Base CSP for RSA " +
			"certificates and the KSP for the others",
		apply: func(k *Knobs) { k.PropagationProviderRule = ProviderCSPForRSA },
	},
	{
		Name: "windows-7",
		Summary: "Windows 7: Base CSP for RSA certificates, session PINs for cards that declare " +
			"them (the CAPI/CNG PIN battle), one PIN cache entry per card for all providers",
		apply: func(k *Knobs) {
			k.PropagationProviderRule = ProviderCSPForRSA
			k.SessionPINs = true
			k.SingleTokenPINCache = true
		},
	},
}

// base are the knobs every profile starts from (each field's comment in
// Knobs gives the reason for its value).
func base() Knobs {
	return Knobs{
		Granularity:                  PerCategory,
		CacheFreshness:               FreshnessCountersDiffer,
		CmapfileCounter:              fs.CategoryFiles,
		GlobalCachePersistent:        true,
		CacheMaxBytesPerItem:         10000,
		CacheMaxBytesTotal:           50000,
		CacheMaxItemAge:              5 * 24 * time.Hour,
		CertFileNaming:               CertNamesHex,
		SessionPINs:                  false,
		DropPINOnWrongPIN:            true,
		PINCacheSurvivesRemoval:      false,
		ChangePINBumpsPins:           true,
		SchannelPINCache:             SchannelOwnPINCache,
		SingleTokenPINCache:          false,
		PropagationEnabled:           true,
		PropagationDelay:             time.Second,
		PropagationJitter:            2 * time.Second,
		PropagationTail:              2 * time.Second,
		PropagationPerReader:         time.Second,
		PropagationMaxDelay:          60 * time.Second,
		PropagationReadsThroughCache: true,
		PropagationProviderRule:      ProviderKSPForAll,
		PropagationCSPOverrideForRSA: false,
		RoamingProfile:               false,
		SilentNoContainerError:       winerr.NTE_BAD_KEYSET,
		HealMissingProvInfo:          true,
		HealSource:                   HealFromMyStore,
		CNGOpensCSPProvInfo:          true,
		NewDefaultOnDelete:           NewDefaultFirstValid,
		FullCardSilentError:          winerr.NTE_TOKEN_KEYSET_STORAGE_FULL,
		LogonReadsAllCertificates:    true,
		LogonAllowSignatureOnlyKeys:  false,
		LogonAllowNoEKU:              false,
		LogonAllowTimeInvalid:        false,
		LogonFilterDuplicateCerts:    true,
		NoDefaultContainer:           NoDefaultFails,
	}
}

// ErrUnknownProfile: a profile name not in Profiles().
var ErrUnknownProfile = fmt.Errorf("winhost: unknown host profile")

// Profiles lists the host profiles, the default first.
func Profiles() []Profile {
	return slices.Clone(profiles)
}

// ProfileNames lists the profile names, the default first.
func ProfileNames() []string {
	out := make([]string, len(profiles))
	for i, p := range profiles {
		out[i] = p.Name
	}
	return out
}

// ProfileKnobs returns the knobs of the named profile ("" is
// DefaultProfile).
func ProfileKnobs(name string) (Knobs, error) {
	if name == "" {
		name = DefaultProfile
	}
	for _, p := range profiles {
		if p.Name == name {
			k := base()
			p.apply(&k)
			return k, nil
		}
	}
	return Knobs{}, fmt.Errorf("%w %q (profiles: %s)", ErrUnknownProfile, name, strings.Join(ProfileNames(), ", "))
}
