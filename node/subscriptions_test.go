package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestMemorySubscriptions: sets are bounded, refused adds change nothing, Get renews the TTL, and an
// expired set is gone, swept with the adds of others.
func TestMemorySubscriptions(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	s := NewMemorySubscriptions(time.Hour)
	s.now = func() time.Time { return now }
	if err := s.Add(ctx, "alice", []string{"/b", "/a", "/a"}, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "alice", []string{"/c"}, 2); !errors.Is(err, ErrTooManySubscriptions) {
		t.Fatalf("past the bound: %v", err)
	}
	if got, _ := s.Get(ctx, "alice"); !slices.Equal(got, []string{"/a", "/b"}) {
		t.Fatalf("Get = %q", got)
	}
	now = now.Add(50 * time.Minute)
	_, _ = s.Get(ctx, "alice") // renews: alive for an hour from here
	now = now.Add(50 * time.Minute)
	if got, _ := s.Get(ctx, "alice"); len(got) != 2 {
		t.Fatalf("Get after a renewal = %q", got)
	}
	if err := s.Remove(ctx, "alice", []string{"/a"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "alice"); !slices.Equal(got, []string{"/b"}) {
		t.Fatalf("after Remove = %q", got)
	}
	now = now.Add(2 * time.Hour)
	if got, _ := s.Get(ctx, "alice"); got != nil {
		t.Fatalf("expired set = %q", got)
	}
	_ = s.Add(ctx, "bob", []string{"/x"}, 2)
	now = now.Add(2 * time.Hour)
	_ = s.Add(ctx, "carol", []string{"/x"}, 2) // sweeps bob
	if n := s.Len(); n != 1 {
		t.Fatalf("%d sets held after the sweep; want carol's only", n)
	}
}
