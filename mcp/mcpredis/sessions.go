// Package mcpredis keeps the MCP gateway's sessions in Redis (mcp.SessionRenewer), so that any node
// can take any message of a session. It is apart from mcp so that the gateway knows no Redis: the
// gateway sees the SessionStore interface, and cmd/edge picks this store when the node has Redis.
package mcpredis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/mcp"
)

// SessionStore keeps sessions in Redis, so that any node can take any message of a session. A
// session is one key with a TTL; reads go through rueidis client-side caching (invalidated when the
// session is deleted), so the messages of a session read it from Redis once per node. HTTP+SSE sessions
// live for a lease that the node holding their stream renews (SessionRenewer); Streamable HTTP
// sessions, which outlive their streams, for the TTL. Its errors other than
// mcp.ErrSessionNotFound and mcp.ErrSessionExists go through redisx.Classify, so Redis being away
// wraps redisx.ErrUnavailable; give it a client instrumented by redisx.Instrumentation.Client.
type SessionStore struct {
	client  rueidis.Client
	prefix  string
	ttl     time.Duration
	lease   time.Duration
	timeout time.Duration
}

var _ mcp.SessionRenewer = (*SessionStore)(nil)

// NewSessionStore keeps sessions under prefix: Streamable HTTP sessions for ttl (default
// mcp.DefaultSessionTTL) after they are created, HTTP+SSE sessions for lease (default
// mcp.DefaultSessionLease) after they are created or last renewed.
func NewSessionStore(client rueidis.Client, prefix string, ttl, lease time.Duration) *SessionStore {
	if ttl <= 0 {
		ttl = mcp.DefaultSessionTTL
	}
	if lease <= 0 {
		lease = mcp.DefaultSessionLease
	}
	return &SessionStore{client: client, prefix: prefix, ttl: ttl, lease: lease, timeout: redisx.DefaultTimeout}
}

// Lease is how long an HTTP+SSE session lives without a renewal.
func (r *SessionStore) Lease() time.Duration { return r.lease }

// Renew extends the lease of the sessions called ids, in one round trip per cluster node.
func (r *SessionStore) Renew(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = r.client.B().Pexpire().Key(r.key(id)).Milliseconds(r.lease.Milliseconds()).Build()
	}
	for _, res := range r.client.DoMulti(octx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("mcp: renew sessions: %w", redisx.Classify(ctx, err))
		}
	}
	return nil
}

// key gives each session its own hash slot, spreading sessions over a cluster.
func (r *SessionStore) key(id string) string { return r.prefix + ":mcp:{" + id + "}" }

// Create stores s unless its ID is taken.
func (r *SessionStore) Create(ctx context.Context, s mcp.Session) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("mcp: encode session: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ttl := r.ttl
	if s.Transport == mcp.TransportSSE {
		ttl = r.lease
	}
	err = r.client.Do(octx, r.client.B().Set().Key(r.key(s.ID)).Value(string(body)).Nx().Px(ttl).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return fmt.Errorf("%w: %s", mcp.ErrSessionExists, s.ID)
	}
	if err != nil {
		return fmt.Errorf("mcp: create session: %w", redisx.Classify(ctx, err))
	}
	return nil
}

// Get returns the session called id.
func (r *SessionStore) Get(ctx context.Context, id string) (mcp.Session, error) {
	octx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	body, err := r.client.DoCache(octx, r.client.B().Get().Key(r.key(id)).Cache(), r.ttl).ToString()
	if rueidis.IsRedisNil(err) {
		return mcp.Session{}, fmt.Errorf("%w: %s", mcp.ErrSessionNotFound, id)
	}
	if err != nil {
		return mcp.Session{}, fmt.Errorf("mcp: get session: %w", redisx.Classify(ctx, err))
	}
	var s mcp.Session
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return mcp.Session{}, fmt.Errorf("mcp: decode session %s: %w", id, err)
	}
	return s, nil
}

// Delete ends the session called id.
func (r *SessionStore) Delete(ctx context.Context, id string) error {
	octx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := r.client.Do(octx, r.client.B().Del().Key(r.key(id)).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("mcp: delete session: %w", redisx.Classify(ctx, err))
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", mcp.ErrSessionNotFound, id)
	}
	return nil
}
