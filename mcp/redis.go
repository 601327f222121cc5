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
// session is deleted), so the messages of a session read it from Redis once per node.
type RedisSessionStore struct {
	client  rueidis.Client
	prefix  string
	ttl     time.Duration
	timeout time.Duration
}

// NewRedisSessionStore keeps sessions under prefix for ttl (default 24h) after they are created.
func NewRedisSessionStore(client rueidis.Client, prefix string, ttl time.Duration) *RedisSessionStore {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &RedisSessionStore{client: client, prefix: prefix, ttl: ttl, timeout: time.Second}
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
	err = r.client.Do(ctx, r.client.B().Set().Key(r.key(s.ID)).Value(string(body)).Nx().Px(r.ttl).Build()).Error()
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
