package winerr

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code Code
		want string
	}{
		{CRYPT_E_NO_KEY_PROPERTY, "CRYPT_E_NO_KEY_PROPERTY (0x8009200B)"},
		{NTE_BAD_SIGNATURE, "NTE_BAD_SIGNATURE (0x80090006)"},
		{SCARD_W_CACHE_ITEM_STALE, "SCARD_W_CACHE_ITEM_STALE (0x80100071)"},
		{NTE_TOKEN_KEYSET_STORAGE_FULL, "NTE_TOKEN_KEYSET_STORAGE_FULL (0x80090023)"},
		{Code(0x80001234), "0x80001234 (0x80001234)"},
	}
	for _, tt := range tests {
		if got := tt.code.Error(); got != tt.want {
			t.Errorf("%#x: %q, want %q", uint32(tt.code), got, tt.want)
		}
	}
	wrapped := fmt.Errorf("acquire key: %w", CRYPT_E_NO_KEY_PROPERTY)
	if !errors.Is(wrapped, CRYPT_E_NO_KEY_PROPERTY) {
		t.Error("errors.Is does not see a wrapped code")
	}
	var c Code
	if !errors.As(wrapped, &c) || c != 0x8009200B {
		t.Errorf("errors.As gave %v", c)
	}
	for _, n := range Names() {
		c, ok := ByName(n)
		if !ok || c.Name() != n {
			t.Errorf("ByName(%q) = %v, %v", n, c, ok)
		}
	}
}
