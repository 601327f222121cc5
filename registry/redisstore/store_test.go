package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/registry/redisstore"
	"github.com/sseedge/sseedge/registry/registrytest"
)

// redisBackend is one running Redis deployment shared by the subtests of a top-level test; each
// subtest isolates itself with its own key prefix.
type redisBackend struct {
	addrs  []string
	prefix atomic.Int64
}

// newPrefix returns a key prefix no other subtest uses.
func (b *redisBackend) newPrefix() string {
	return fmt.Sprintf("t%d", b.prefix.Add(1))
}

// client returns a new client (as another edge node would have), closed when the test ends.
func (b *redisBackend) client(t *testing.T) rueidis.Client {
	t.Helper()
	c, err := redisstore.NewClient(b.addrs, "")
	if err != nil {
		t.Fatalf("NewClient(%v): %v", b.addrs, err)
	}
	t.Cleanup(c.Close)
	return c
}

// commandCount sums a command's calls over every node.
func (b *redisBackend) commandCount(t *testing.T, cmd string) int64 {
	t.Helper()
	var n int64
	for _, a := range b.addrs {
		n += redistest.CommandCount(t, a, cmd)
	}
	return n
}

// TestRedisSingle and TestRedisCluster run every Redis-backed test against a standalone server
// and a 3-master cluster; they run in parallel so the cluster's start-up overlaps the other.
func TestRedisSingle(t *testing.T) {
	t.Parallel()
	srv := redistest.StartSingle(t)
	runRedisTests(t, &redisBackend{addrs: []string{srv.Addr()}})
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	runRedisTests(t, &redisBackend{addrs: c.Addrs()})
}

func runRedisTests(t *testing.T, b *redisBackend) {
	t.Run("StoreConformance", func(t *testing.T) {
		client := b.client(t)
		registrytest.Run(t, func(t *testing.T) registry.Store {
			return redisstore.New(client, b.newPrefix())
		})
	})
	t.Run("StoreGetsServedFromCache", func(t *testing.T) { testGetsServedFromCache(t, b) })
	t.Run("StoreInvalidationAcrossNodes", func(t *testing.T) { testInvalidationAcrossNodes(t, b) })
	t.Run("StoreListCached", func(t *testing.T) { testListCached(t, b) })
	t.Run("Directory", func(t *testing.T) {
		client := b.client(t)
		registrytest.RunDirectory(t, func(t *testing.T, ttl time.Duration) registry.Directory {
			return redisstore.NewDirectory(client, b.newPrefix(), redisstore.WithDirectoryTTL(ttl))
		})
	})
	t.Run("DirectoryRefreshIsOneRoundTrip", func(t *testing.T) { testRefreshOneRoundTrip(t, b) })
}

// testGetsServedFromCache proves that once a function is cached, Gets cost no Redis command.
func testGetsServedFromCache(t *testing.T, b *redisBackend) {
	ctx := context.Background()
	var hookHits, hookMisses atomic.Int64
	s := redisstore.New(b.client(t), b.newPrefix(), redisstore.WithOnCacheHit(func(hit bool) {
		if hit {
			hookHits.Add(1)
		} else {
			hookMisses.Add(1)
		}
	}))
	want := registrytest.Function(t, "cached")
	if err := s.Put(ctx, want); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := s.Get(ctx, "cached"); err != nil { // the first Get may fetch
		t.Fatalf("first Get: %v", err)
	}
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, registry.ErrNotFound) { // absence is cached too
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	reads := func() int64 {
		return b.commandCount(t, "get") + b.commandCount(t, "mget") + b.commandCount(t, "exec")
	}
	before, stats := reads(), s.Stats()
	hitsBefore := hookHits.Load()
	start := time.Now()
	for range 1000 {
		got, err := s.Get(ctx, "cached")
		if err != nil || got.Endpoint != want.Endpoint {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	}
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	elapsed := time.Since(start)
	if d := reads() - before; d != 0 {
		t.Fatalf("1001 cached Gets ran %d read commands on Redis, want 0", d)
	}
	after := s.Stats()
	if hits, misses := after.Hits-stats.Hits, after.Misses-stats.Misses; hits != 1001 || misses != 0 {
		t.Fatalf("cache hits/misses = %d/%d, want 1001/0", hits, misses)
	}
	if h := hookHits.Load() - hitsBefore; h != 1001 {
		t.Fatalf("OnCacheHit(true) called %d times, want 1001", h)
	}
	t.Logf("1001 cached Gets in %v (%v each), 0 Redis reads", elapsed, elapsed/1001)
}

// testInvalidationAcrossNodes proves that a write on one node reaches another node's cache at
// once (server-assisted invalidation), not after the one-hour cache TTL.
func testInvalidationAcrossNodes(t *testing.T, b *redisBackend) {
	ctx := context.Background()
	prefix := b.newPrefix()
	nodeA := redisstore.New(b.client(t), prefix)
	nodeB := redisstore.New(b.client(t), prefix)

	fn := registrytest.Function(t, "shared")
	fn.Description = "v1"
	if err := nodeA.Put(ctx, fn); err != nil {
		t.Fatalf("Put v1: %v", err)
	}
	// Let B cache v1 and prove the second read is a hit, so what follows tests invalidation.
	for range 2 {
		if got, err := nodeB.Get(ctx, "shared"); err != nil || got.Description != "v1" {
			t.Fatalf("B Get = %q, %v; want v1", got.Description, err)
		}
	}
	if nodeB.Stats().Hits == 0 {
		t.Fatal("B's second Get was not a cache hit")
	}
	// B also caches the absence of a name.
	if _, err := nodeB.Get(ctx, "later"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("B Get(later) = %v, want ErrNotFound", err)
	}

	within := func(what string, ok func() bool) {
		t.Helper()
		const bound = 100 * time.Millisecond
		start := time.Now()
		for !ok() {
			if time.Since(start) > bound {
				t.Fatalf("%s: node B did not see it within %v", what, bound)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("%s seen by node B after %v", what, time.Since(start))
	}

	fn.Description = "v2"
	if err := nodeA.Put(ctx, fn); err != nil {
		t.Fatalf("Put v2: %v", err)
	}
	within("Put v2", func() bool {
		got, err := nodeB.Get(ctx, "shared")
		return err == nil && got.Description == "v2"
	})
	if err := nodeA.Put(ctx, registrytest.Function(t, "later")); err != nil {
		t.Fatalf("Put later: %v", err)
	}
	within("Put of a name B had cached as absent", func() bool {
		_, err := nodeB.Get(ctx, "later")
		return err == nil
	})
	if err := nodeA.Delete(ctx, "shared"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	within("Delete", func() bool {
		_, err := nodeB.Get(ctx, "shared")
		return errors.Is(err, registry.ErrNotFound)
	})
}

// TestRedisStoreOutage stops Redis under a store with a warm cache: Get and Put must fail fast with
// ErrUnavailable (never serve what may be stale), and work again once Redis is back, on the same
// client.
func TestRedisStoreOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.StartSingle(t)
	b := &redisBackend{addrs: []string{srv.Addr()}}
	client := redisx.Instrumentation{}.Client(b.client(t)) // as a node wires it
	s := redisstore.New(client, "")
	dir := redisstore.NewDirectory(client, "")
	if err := s.Put(ctx, registrytest.Function(t, "alpha")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for range 2 {
		if _, err := s.Get(ctx, "alpha"); err != nil {
			t.Fatalf("Get: %v", err)
		}
	}

	srv.Stop()
	// The client learns of the outage when its connection reader sees the socket close, a moment
	// after the process is gone; until then a cached Get may still succeed. From then on Gets fail.
	start := time.Now()
	var err error
	for {
		if _, err = s.Get(ctx, "alpha"); err != nil {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("Get still served from the cache 1s after Redis stopped")
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Get with Redis stopped = %v, want ErrUnavailable", err)
	}
	detected := time.Since(start)
	_, err = s.Get(ctx, "alpha")
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("second Get with Redis stopped = %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Fatalf("Gets with Redis stopped took %v, want about 1s at most", elapsed)
	}
	t.Logf("Get with Redis stopped: ErrUnavailable after %v (detected after %v): %v", time.Since(start), detected, err)
	start = time.Now()
	if err := s.Put(ctx, registrytest.Function(t, "beta")); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Put with Redis stopped = %v, want ErrUnavailable", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("List with Redis stopped = %v, want ErrUnavailable", err)
	}
	t.Logf("Put and List with Redis stopped failed after %v", time.Since(start))
	if _, err := dir.Lookup(ctx, "c1"); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Lookup with Redis stopped = %v, want ErrUnavailable", err)
	}
	if err := dir.Refresh(ctx, "node-a", []string{"c1", "c2"}); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Refresh with Redis stopped = %v, want ErrUnavailable", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cctx, "alpha"); !errors.Is(err, context.Canceled) || errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Get(canceled) with Redis stopped = %v, want context.Canceled only", err)
	}

	srv.Restart() // empty: nothing is persisted
	start = time.Now()
	for {
		err := s.Put(ctx, registrytest.Function(t, "beta"))
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Put after restart still failing after 5s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("Put succeeded %v after restart", time.Since(start))
	if _, err := s.Get(ctx, "beta"); err != nil {
		t.Fatalf("Get(beta) after restart: %v", err)
	}
	// The restarted server lost alpha; the cache from before the outage must not bring it back.
	if _, err := s.Get(ctx, "alpha"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get(alpha) after restart = %v, want ErrNotFound", err)
	}
}

// TestRedisStoreHungServer freezes Redis: a read that needs the server must give up with
// ErrUnavailable after the operation timeout (1s) rather than wait for TCP to notice, and
// everything works again once the server resumes.
func TestRedisStoreHungServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.StartSingle(t)
	b := &redisBackend{addrs: []string{srv.Addr()}}
	client := redisx.Instrumentation{}.Client(b.client(t)) // as a node wires it
	s := redisstore.New(client, "")
	dir := redisstore.NewDirectory(client, "")
	if err := s.Put(ctx, registrytest.Function(t, "alpha")); err != nil {
		t.Fatalf("Put: %v", err)
	}

	srv.Pause()
	start := time.Now()
	_, err := s.Get(ctx, "never-cached")
	elapsed := time.Since(start)
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Get with Redis hung = %v, want ErrUnavailable", err)
	}
	if elapsed > 1500*time.Millisecond {
		t.Fatalf("Get with Redis hung took %v, want about %v", elapsed, redisstore.DefaultTimeout)
	}
	t.Logf("Get with Redis hung: ErrUnavailable after %v: %v", elapsed, err)
	start = time.Now()
	if _, err := dir.Lookup(ctx, "c1"); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Lookup with Redis hung = %v, want ErrUnavailable", err)
	}
	t.Logf("Lookup with Redis hung: ErrUnavailable after %v", time.Since(start))

	srv.Resume()
	start = time.Now()
	for {
		_, err := s.Get(ctx, "alpha")
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Get after resume still failing after 5s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := dir.Register(ctx, "c1", "node-a"); err != nil {
		t.Fatalf("Register after resume: %v", err)
	}
}

// TestNewClientPassword checks that the password is used and that a wrong one is reported
// as such, not as an outage.
func TestNewClientPassword(t *testing.T) {
	t.Parallel()
	srv := redistest.StartSingle(t)
	if _, err := redistest.Do(srv.Addr(), "CONFIG", "SET", "requirepass", "s3cret"); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	c, err := redisstore.NewClient([]string{srv.Addr()}, "s3cret")
	if err != nil {
		t.Fatalf("NewClient with the password: %v", err)
	}
	defer c.Close()
	s := redisstore.New(c, "")
	if err := s.Put(context.Background(), registrytest.Function(t, "alpha")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if c, err := redisstore.NewClient([]string{srv.Addr()}, "wrong"); err == nil || errors.Is(err, registry.ErrUnavailable) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("NewClient with a wrong password = %v, want an auth error that is not ErrUnavailable", err)
	}
	if _, err := redisstore.NewClient(nil, ""); err == nil {
		t.Fatal("NewClient(no address) succeeded")
	}
}

func TestNewRejectsBraces(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a prefix with a brace")
		}
	}()
	redisstore.New(nil, "a{b}")
}

// testListCached: ListCached lists what List lists, costs Redis nothing once a node has read it, and
// follows changes made on another node.
func testListCached(t *testing.T, b *redisBackend) {
	ctx := context.Background()
	prefix := b.newPrefix()
	a := redisstore.New(b.client(t), prefix)
	other := redisstore.New(b.client(t), prefix) // another node
	for _, name := range []string{"one", "two"} {
		if err := a.Put(ctx, registrytest.Function(t, name)); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	names := func(s *redisstore.Store) string {
		t.Helper()
		fns, err := s.ListCached(ctx)
		if err != nil {
			t.Fatalf("ListCached: %v", err)
		}
		var out []string
		for _, fn := range fns {
			out = append(out, fn.Name)
		}
		return fmt.Sprint(out)
	}
	if got := names(other); got != "[one two]" {
		t.Fatalf("ListCached = %s; want [one two]", got)
	}
	reads := func() int64 {
		return b.commandCount(t, "smembers") + b.commandCount(t, "get") + b.commandCount(t, "mget") + b.commandCount(t, "exec")
	}
	before := reads()
	for range 100 {
		if got := names(other); got != "[one two]" {
			t.Fatalf("ListCached = %s; want [one two]", got)
		}
	}
	if d := reads() - before; d != 0 {
		t.Fatalf("100 cached listings sent %d reads to Redis; want 0", d)
	}
	if fns, err := other.List(ctx); err != nil || len(fns) != 2 || reads() == before {
		t.Fatalf("List = %d functions, %v, reads %d -> %d; want 2 read from Redis (the count can move)", len(fns), err, before, reads())
	}
	if err := a.Put(ctx, registrytest.Function(t, "three")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := a.Delete(ctx, "one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	testutil.WaitFor(t, "the other node's cached listing to follow", func() bool { return names(other) == "[three two]" })
}
