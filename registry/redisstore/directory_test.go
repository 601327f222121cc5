package redisstore_test

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/registry/redisstore"
)

// countingClient counts the round trips a Directory makes: each Do or DoMulti call is one
// (DoMulti pipelines all its commands; on a cluster it sends each master its share concurrently).
type countingClient struct {
	rueidis.Client
	do, doMulti atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.do.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c *countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.doMulti.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}

// testRefreshOneRoundTrip proves that refreshing 1,000 clients is one pipelined round trip that
// really writes all 1,000 entries.
func testRefreshOneRoundTrip(t *testing.T, b *redisBackend) {
	ctx := context.Background()
	cc := &countingClient{Client: b.client(t)}
	prefix := b.newPrefix()
	d := redisstore.NewDirectory(cc, prefix)
	clients := make([]string, 1000)
	for i := range clients {
		clients[i] = fmt.Sprintf("client-%04d", i)
	}
	zadds := b.commandCount(t, "zadd")
	start := time.Now()
	if err := d.Refresh(ctx, "node-a", clients); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	elapsed := time.Since(start)
	if do, multi := cc.do.Load(), cc.doMulti.Load(); do != 0 || multi != 1 {
		t.Fatalf("Refresh of 1000 clients made %d Do and %d DoMulti calls, want 0 and 1", do, multi)
	}
	if n := b.commandCount(t, "zadd") - zadds; n != 1000 {
		t.Fatalf("Refresh ran ZADD %d times, want 1000", n)
	}
	if len(b.addrs) > 1 {
		for _, a := range b.addrs { // clients spread over the masters
			if n := redistest.CommandCount(t, a, "zadd"); n == 0 {
				t.Fatalf("master %s got no directory entry", a)
			}
		}
	}
	for _, c := range []string{clients[0], clients[499], clients[999]} {
		if got, err := d.Lookup(ctx, c); err != nil || !reflect.DeepEqual(got, []string{"node-a"}) {
			t.Fatalf("Lookup(%s) = %v, %v", c, got, err)
		}
	}
	// Redis itself reclaims the key of a client nobody refreshes: it carries a TTL.
	if pttl := b.pttl(t, prefix+":{c:client-0500}:nodes"); pttl <= 0 || pttl > registry.DefaultDirectoryTTL.Milliseconds() {
		t.Fatalf("PTTL of a client key = %d ms, want in (0, %d]", pttl, registry.DefaultDirectoryTTL.Milliseconds())
	}
	t.Logf("Refresh of 1000 clients: 1 round trip, %v", elapsed)
}

// pttl returns the PTTL of key, asking the node that owns it.
func (b *redisBackend) pttl(t *testing.T, key string) int64 {
	t.Helper()
	for _, a := range b.addrs {
		v, err := redistest.Do(a, "PTTL", key)
		if err != nil {
			continue // MOVED: another master owns the key
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("PTTL %s = %q", key, v)
		}
		return n
	}
	t.Fatalf("no node answered PTTL %s", key)
	return 0
}
