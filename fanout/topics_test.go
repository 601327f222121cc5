package fanout

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestNormalizeTopics(t *testing.T) {
	cases := []struct {
		raw  []string
		want []string
	}{
		{nil, []string{}},
		{[]string{"/news", "pets/dogs/", "/a"}, []string{"/a", "/news", "/pets/dogs"}},
		{[]string{"/pets", "/pets/dogs", "/pets/dogs/puppies"}, []string{"/pets"}}, // nested: one subscription
		{[]string{"/pets/dogs", "/pets/", "/pets"}, []string{"/pets"}},
		{[]string{"/pets/dogs", "/pets/cats", "/pets/dogs"}, []string{"/pets/cats", "/pets/dogs"}},
		// "/pets-x" sorts between "/pets" and "/pets/dogs", and is not under "/pets".
		{[]string{"/pets/dogs", "/pets-x", "/pets", "/petsy/a"}, []string{"/pets", "/pets-x", "/petsy/a"}},
		{[]string{"/a/b/c", "/a/b"}, []string{"/a/b"}},
	}
	for _, c := range cases {
		got, err := NormalizeTopics(c.raw, 8)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("NormalizeTopics(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
}

func TestNormalizeTopicsRefuses(t *testing.T) {
	if _, err := NormalizeTopics([]string{"/a", "/b", "/a"}, 2); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("3 requested, max 2: %v", err)
	}
	if got, err := NormalizeTopics([]string{"/a", "/b"}, 2); err != nil || len(got) != 2 {
		t.Fatalf("2 requested, max 2: %q, %v", got, err)
	}
	many := make([]string, MaxTopicsPerStream+1)
	for i := range many {
		many[i] = fmt.Sprintf("/t%d", i)
	}
	for _, max := range []int{0, -1, 1000} { // clamped to MaxTopicsPerStream
		if _, err := NormalizeTopics(many, max); !errors.Is(err, ErrTooManyTopics) {
			t.Fatalf("max %d, %d requested: %v", max, len(many), err)
		}
		if _, err := NormalizeTopics(many[:MaxTopicsPerStream], max); err != nil {
			t.Fatalf("max %d, %d requested: %v", max, MaxTopicsPerStream, err)
		}
	}
	for _, bad := range []string{"/a/../b", "", "/", "/a//b", "/x\x00"} {
		_, err := NormalizeTopics([]string{"/ok", bad}, 8)
		if !errors.Is(err, ErrBadTopic) || errors.Is(err, ErrTooManyTopics) {
			t.Errorf("topic %q: %v, want ErrBadTopic", bad, err)
		}
	}
}

func TestRoots(t *testing.T) {
	got := Roots([]string{"/pets/dogs", "alice", "/news", "/pets/cats", "/pets", "", "/news/today"})
	if want := []string{"/news", "/pets", "alice"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := NewCursorState(got); err != nil {
		t.Fatalf("Roots' result is not a cursor's roots: %v", err)
	}
}
