package clientid

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"alice", "a.b-c_d", "café", strings.Repeat("x", MaxLen)} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v; want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a b", "a%2fb", "a\x00", "a\x7f", strings.Repeat("x", MaxLen+1)} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) = nil; want a refusal", bad)
		}
	}
}
