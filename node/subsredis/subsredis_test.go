package subsredis_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/internal/stateerr"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/node/subsredis"
)

func newClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := redisx.NewClient(redisx.Config{Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return redisx.Instrumentation{Timeout: 500 * time.Millisecond}.Client(c) // as a node wires it
}

// pttl is the remaining life of client's set, in ms (-2: no set).
func pttl(t *testing.T, addr, client string) int64 {
	return redistest.PTTL(t, addr, "t:subs:{"+client+"}")
}

// TestStore: a set added through one node is read through another; the bound refuses an add that would
// pass it, whole; removes take topics out; every call renews the TTL; concurrent adds through two
// nodes never pass the bound.
func TestStore(t *testing.T) {
	srv := redistest.StartSingle(t)
	ctx := context.Background()
	const ttl = time.Hour
	a := subsredis.New(newClient(t, srv.Addr()), "t", ttl)
	b := subsredis.New(newClient(t, srv.Addr()), "t", ttl)

	if got, err := b.Get(ctx, "alice"); err != nil || got != nil {
		t.Fatalf("Get of no set = %q, %v; want nil, nil", got, err)
	}
	if err := a.Add(ctx, "alice", []string{"/room/2", "/room/1", "/room/1"}, 3); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "alice"); err != nil || !slices.Equal(got, []string{"/room/1", "/room/2"}) {
		t.Fatalf("Get on the other node = %q, %v", got, err)
	}
	if err := b.Add(ctx, "alice", []string{"/room/1", "/room/3"}, 3); err != nil { // one new: 3 in all
		t.Fatal(err)
	}
	err := a.Add(ctx, "alice", []string{"/room/4", "/room/5"}, 3)
	if !errors.Is(err, node.ErrTooManySubscriptions) {
		t.Fatalf("add past the bound: %v; want ErrTooManySubscriptions", err)
	}
	if got, _ := a.Get(ctx, "alice"); len(got) != 3 {
		t.Fatalf("a refused add changed the set: %q", got)
	}

	if _, err := redistest.Do(srv.Addr(), "PEXPIRE", "t:subs:{alice}", "1000"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if ms := pttl(t, srv.Addr(), "alice"); ms < (ttl - time.Minute).Milliseconds() {
		t.Fatalf("PTTL after Get = %d ms; want the TTL renewed", ms)
	}
	if err := a.Remove(ctx, "alice", []string{"/room/1", "/nope"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, "alice"); !slices.Equal(got, []string{"/room/2", "/room/3"}) {
		t.Fatalf("after Remove = %q", got)
	}
	if err := b.Remove(ctx, "alice", []string{"/room/2", "/room/3"}); err != nil {
		t.Fatal(err)
	}
	if ms := pttl(t, srv.Addr(), "alice"); ms != -2 {
		t.Fatalf("an emptied set: PTTL %d; want no key", ms)
	}

	// Two nodes adding at once: the bound holds.
	var wg sync.WaitGroup
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { _ = s.Add(ctx, "bob", []string{"/t/" + strconv.Itoa(i)}, 5) })
	}
	wg.Wait()
	if got, _ := a.Get(ctx, "bob"); len(got) != 5 {
		t.Fatalf("concurrent adds: %d topics; want the bound, 5", len(got))
	}
}

// TestStoreUnavailable: with Redis gone every call fails fast with an error wrapping
// stateerr.ErrUnavailable, which the node turns into a stream opened on its URL's topics.
func TestStoreUnavailable(t *testing.T) {
	srv := redistest.StartSingle(t)
	s := subsredis.New(newClient(t, srv.Addr()), "t", time.Hour)
	ctx := context.Background()
	if err := s.Add(ctx, "alice", []string{"/a"}, 64); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	began := time.Now()
	if _, err := s.Get(ctx, "alice"); !errors.Is(err, stateerr.ErrUnavailable) {
		t.Fatalf("Get with Redis down: %v; want ErrUnavailable", err)
	}
	if err := s.Add(ctx, "alice", []string{"/b"}, 64); !errors.Is(err, stateerr.ErrUnavailable) {
		t.Fatalf("Add with Redis down: %v; want ErrUnavailable", err)
	}
	if err := s.Remove(ctx, "alice", []string{"/a"}); !errors.Is(err, stateerr.ErrUnavailable) {
		t.Fatalf("Remove with Redis down: %v; want ErrUnavailable", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("three calls with Redis down took %v", d)
	}
}
