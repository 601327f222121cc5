package mcpredis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/mcp/mcpredis"
)

func newClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := redisx.NewClient(redisx.Config{Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return redisx.Instrumentation{}.Client(c) // as a node wires it
}

// pttl is the remaining life of session id's key, in ms.
func pttl(t *testing.T, addr, id string) int64 {
	return redistest.PTTL(t, addr, "t:mcp:{"+id+"}")
}

// TestSessionStore: sessions created on one node are read on another; an ID is taken once; a deleted
// session is gone on every node; Streamable HTTP sessions live for the TTL and HTTP+SSE ones for the
// lease, which Renew extends.
func TestSessionStore(t *testing.T) {
	srv := redistest.StartSingle(t)
	ctx := context.Background()
	const ttl, lease = time.Hour, 20 * time.Second
	a := mcpredis.NewSessionStore(newClient(t, srv.Addr()), "t", ttl, lease)
	b := mcpredis.NewSessionStore(newClient(t, srv.Addr()), "t", ttl, lease)
	if a.Lease() != lease {
		t.Errorf("Lease() = %v; want %v", a.Lease(), lease)
	}

	stream := mcp.Session{ID: mcp.NewSessionID(), Function: "echo", Transport: mcp.TransportStreamable,
		ProtocolVersion: "2025-06-18", CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Source: "192.0.2.1"}
	if err := a.Create(ctx, stream); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, stream); !errors.Is(err, mcp.ErrSessionExists) {
		t.Fatalf("Create of a taken ID on another node: %v; want ErrSessionExists", err)
	}
	got, err := b.Get(ctx, stream.ID)
	if err != nil || got != stream {
		t.Fatalf("Get on another node = %+v, %v; want %+v", got, err, stream)
	}
	if n := pttl(t, srv.Addr(), stream.ID); n <= lease.Milliseconds() || n > ttl.Milliseconds() {
		t.Errorf("Streamable HTTP session lives %d ms; want the TTL %v", n, ttl)
	}

	sse := mcp.Session{ID: mcp.NewSessionID(), Function: "echo", Transport: mcp.TransportSSE, CreatedAt: time.Now().UTC()}
	if err := a.Create(ctx, sse); err != nil {
		t.Fatal(err)
	}
	if n := pttl(t, srv.Addr(), sse.ID); n <= 0 || n > lease.Milliseconds() {
		t.Errorf("HTTP+SSE session lives %d ms; want at most the lease %v", n, lease)
	}
	if _, err := redistest.Do(srv.Addr(), "PEXPIRE", "t:mcp:{"+sse.ID+"}", "5000"); err != nil {
		t.Fatal(err)
	}
	if err := b.Renew(ctx, []string{sse.ID, mcp.NewSessionID()}); err != nil { // an unknown ID is no error
		t.Fatal(err)
	}
	if n := pttl(t, srv.Addr(), sse.ID); n <= 5000 || n > lease.Milliseconds() {
		t.Errorf("renewed HTTP+SSE session lives %d ms; want the lease %v again", n, lease)
	}

	if err := a.Delete(ctx, stream.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, stream.ID); !errors.Is(err, mcp.ErrSessionNotFound) {
		t.Fatalf("second Delete: %v; want ErrSessionNotFound", err)
	}
	// b read the session through its client-side cache; Redis's invalidation reaches it on its own.
	testutil.WaitFor(t, "the deleted session to be gone on the other node", func() bool {
		_, err := b.Get(ctx, stream.ID)
		return errors.Is(err, mcp.ErrSessionNotFound)
	})
}

// TestSessionStoreRedisDown: with Redis killed every operation fails fast with an error that wraps
// ErrUnavailable (so the gateway answers 503), never ErrSessionNotFound (which would tell the client to
// start over).
func TestSessionStoreRedisDown(t *testing.T) {
	srv := redistest.StartSingle(t)
	ctx := context.Background()
	s := mcpredis.NewSessionStore(newClient(t, srv.Addr()), "t", 0, 0)
	if s.Lease() != mcp.DefaultSessionLease {
		t.Errorf("Lease() = %v; want the default %v", s.Lease(), mcp.DefaultSessionLease)
	}
	sess := mcp.Session{ID: mcp.NewSessionID(), Function: "echo", Transport: mcp.TransportStreamable}
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	began := time.Now()
	for name, err := range map[string]error{
		"Create": s.Create(ctx, mcp.Session{ID: mcp.NewSessionID(), Transport: mcp.TransportSSE}),
		"Get":    func() error { _, err := s.Get(ctx, sess.ID); return err }(),
		"Delete": s.Delete(ctx, sess.ID),
		"Renew":  s.Renew(ctx, []string{sess.ID}),
	} {
		if !errors.Is(err, fanout.ErrUnavailable) || errors.Is(err, mcp.ErrSessionNotFound) {
			t.Errorf("%s with Redis killed: %v; want ErrUnavailable", name, err)
		}
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("four operations with Redis killed took %v; want them to fail fast", took)
	}
}
