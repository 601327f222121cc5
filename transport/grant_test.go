package transport

import (
	"slices"
	"testing"
)

// FuzzParseGrant: a grant comes off the bus, so any bytes must parse or be refused without panicking,
// and whatever parses encodes back to itself.
func FuzzParseGrant(f *testing.F) {
	f.Add([]byte("1796188473\n/pets\n/news/sport"))
	f.Add([]byte("1796188473"))
	f.Add([]byte("0\n/a"))
	f.Add([]byte("4294967296"))
	f.Add([]byte("12\n\n/a"))
	f.Add([]byte("12\n/a\r"))
	f.Fuzz(func(t *testing.T, b []byte) {
		exp, topics, err := ParseGrant(b)
		if err != nil {
			return
		}
		if exp == 0 || len(topics) > MaxGrantTopics {
			t.Fatalf("parsed %q to deadline %d, %d topics", b, exp, len(topics))
		}
		again, topics2, err := ParseGrant(AppendGrant(nil, exp, topics))
		if err != nil || again != exp || !slices.Equal(topics, topics2) {
			t.Fatalf("%q: %d %q does not round-trip: %d %q %v", b, exp, topics, again, topics2, err)
		}
	})
}

func TestGrantRoundTrip(t *testing.T) {
	for _, topics := range [][]string{nil, {"/pets"}, {"/", "*", "/a/b"}} {
		exp, got, err := ParseGrant(AppendGrant(nil, 1796188473, topics))
		if err != nil || exp != 1796188473 || !slices.Equal(got, topics) {
			t.Errorf("%q: %d %q %v", topics, exp, got, err)
		}
	}
	if !GrantCovers([]string{"/pets"}, []string{"/pets/dogs"}) || GrantCovers([]string{"/pets"}, []string{"/cars"}) || !GrantCovers(nil, nil) {
		t.Error("GrantCovers")
	}
}
