package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// RedisSessionStore keeps sessions in Redis, so that any node can take any message of a session. A
// session is one key with a TTL; reads go through rueidis client-side caching (invalidated when the
// session is deleted), so the messages of a session read it from Redis once per node. HTTP+SSE sessions
// live for a lease that the node holding their stream renews (SessionRenewer); Streamable HTTP
// sessions, which outlive their streams, for the TTL.
type RedisSessionStore struct {
	client  rueidis.Client
	prefix  string
	ttl     time.Duration
	lease   time.Duration
	timeout time.Duration
}

var _ SessionRenewer = (*RedisSessionStore)(nil)

// Defaults of NewRedisSessionStore.
const (
	DefaultSessionTTL   = 24 * time.Hour
	DefaultSessionLease = time.Minute
)

// NewRedisSessionStore keeps sessions under prefix: Streamable HTTP sessions for ttl (default
// DefaultSessionTTL) after they are created, HTTP+SSE sessions for lease (default DefaultSessionLease)
// after they are created or last renewed.
func NewRedisSessionStore(client rueidis.Client, prefix string, ttl, lease time.Duration) *RedisSessionStore {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if lease <= 0 {
		lease = DefaultSessionLease
	}
	return &RedisSessionStore{client: client, prefix: prefix, ttl: ttl, lease: lease, timeout: time.Second}
}

// Lease is how long an HTTP+SSE session lives without a renewal.
func (r *RedisSessionStore) Lease() time.Duration { return r.lease }

// Renew extends the lease of the sessions called ids, in one round trip per cluster node.
func (r *RedisSessionStore) Renew(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = r.client.B().Pexpire().Key(r.key(id)).Milliseconds(r.lease.Milliseconds()).Build()
	}
	for _, res := range r.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("mcp: renew sessions: %w", err)
		}
	}
	return nil
}

// key gives each session its own hash slot, spreading sessions over a cluster.
func (r *RedisSessionStore) key(id string) string { return r.prefix + ":mcp:{" + id + "}" }

// Create stores s unless its ID is taken.
func (r *RedisSessionStore) Create(ctx context.Context, s Session) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("mcp: encode session: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ttl := r.ttl
	if s.Transport == TransportSSE {
		ttl = r.lease
	}
	err = r.client.Do(ctx, r.client.B().Set().Key(r.key(s.ID)).Value(string(body)).Nx().Px(ttl).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return fmt.Errorf("%w: %s", ErrSessionExists, s.ID)
	}
	if err != nil {
		return fmt.Errorf("mcp: create session: %w", err)
	}
	return nil
}

// Get returns the session called id.
func (r *RedisSessionStore) Get(ctx context.Context, id string) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	body, err := r.client.DoCache(ctx, r.client.B().Get().Key(r.key(id)).Cache(), r.ttl).ToString()
	if rueidis.IsRedisNil(err) {
		return Session{}, fmt.Errorf("%w: %s", ErrSessionNotFound, id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("mcp: get session: %w", err)
	}
	var s Session
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return Session{}, fmt.Errorf("mcp: decode session %s: %w", id, err)
	}
	return s, nil
}

// Delete ends the session called id.
func (r *RedisSessionStore) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := r.client.Do(ctx, r.client.B().Del().Key(r.key(id)).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("mcp: delete session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrSessionNotFound, id)
	}
	return nil
}
