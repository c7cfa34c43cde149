package winerr

// Codes of the Windows host model's fidelity work (docs/windows-fidelity.md);
// values from winerror.h.
const (
	// NTE_BAD_PROV_TYPE "Invalid provider type specified": CryptAcquireContext
	// with a provider type outside 1..999, which is what a CryptoAPI
	// acquisition of a key whose CRYPT_KEY_PROV_INFO names a KSP
	// (dwProvType 0) passes.
	NTE_BAD_PROV_TYPE Code = 0x80090014
	// NTE_BAD_PROVIDER "Invalid provider specified".
	NTE_BAD_PROVIDER Code = 0x80090013
)

func init() {
	names[NTE_BAD_PROV_TYPE] = "NTE_BAD_PROV_TYPE"
	names[NTE_BAD_PROVIDER] = "NTE_BAD_PROVIDER"
}
