package redistest

import (
	"strconv"
	"testing"
)

// PTTL returns the remaining life of key on addr in milliseconds (-2: no such key, -1: no expiry),
// failing the test when Redis cannot say.
func PTTL(t testing.TB, addr, key string) int64 {
	t.Helper()
	v, err := Do(addr, "PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("PTTL %s = %q", key, v)
	}
	return n
}
