package transport

import (
	"slices"
	"testing"
)

func TestSubsChangeRoundTrip(t *testing.T) {
	for _, add := range []bool{true, false} {
		b := AppendSubsChange(nil, add, []string{"/room/1", "/news", "bad\ntopic"})
		if !IsSubsChange(b) || IsSubsChange(AppendGrant(nil, 12, []string{"/a"})) {
			t.Fatalf("IsSubsChange confuses a change and a grant: %q", b)
		}
		got, topics, err := ParseSubsChange(b)
		if err != nil || got != add || !slices.Equal(topics, []string{"/room/1", "/news"}) {
			t.Fatalf("%q: %v %q %v", b, got, topics, err)
		}
	}
	for _, bad := range []string{"", SubsPrefix, SubsPrefix + "*", SubsPrefix + "+/a", SubsPrefix + "+\n", SubsPrefix + "+\n/a\n\n/b"} {
		if _, _, err := ParseSubsChange([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseSubsChange: a subscription change comes off the bus, so any bytes must parse or be refused
// without panicking, and whatever parses encodes back to itself.
func FuzzParseSubsChange(f *testing.F) {
	f.Add([]byte(SubsPrefix + "+\n/room/1\n/news"))
	f.Add([]byte(SubsPrefix + "-"))
	f.Add([]byte(SubsPrefix + "+\n\n/a"))
	f.Add([]byte("1796188473\n/pets"))
	f.Fuzz(func(t *testing.T, b []byte) {
		add, topics, err := ParseSubsChange(b)
		if err != nil {
			return
		}
		if len(topics) > MaxGrantTopics {
			t.Fatalf("%q: %d topics", b, len(topics))
		}
		add2, topics2, err := ParseSubsChange(AppendSubsChange(nil, add, topics))
		if err != nil || add2 != add || !slices.Equal(topics, topics2) {
			t.Fatalf("%q: %v %q does not round-trip: %v %q %v", b, add, topics, add2, topics2, err)
		}
	})
}
