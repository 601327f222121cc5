// Package subsredis keeps clients' server-side subscriptions in Redis (node.SubscriptionStore), so that
// a client subscribed through one node finds its topics on whichever node it reconnects to. It is apart
// from node so that the node knows no Redis: cmd/edge picks this store when the node has Redis.
package subsredis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/node"
)

// Store keeps each client's set as one Redis set with a TTL, renewed by every call:
//
//	<prefix>:subs:{<clientID>}   set of canonical topics
//
// The hash tag gives each client its own slot, spreading clients over a cluster. Reads are plain (no
// client-side caching): each Get renews the TTL too, so it is a write as much as a read, and it is
// pipelined with it in one round trip. An Add checks the bound and adds in one script, so concurrent
// adds through several nodes cannot take a set past it. Give it a client instrumented by
// redisx.Instrumentation.Client (spans, deadline, metric); its errors go through redisx.Classify, so
// Redis being away wraps stateerr.ErrUnavailable.
type Store struct {
	client rueidis.Client
	prefix string
	ttl    time.Duration
	add    *rueidis.Lua
}

var _ node.SubscriptionStore = (*Store)(nil)

// addLua adds ARGV[3..] to the set KEYS[1] unless it would then hold more than ARGV[2] members, and
// renews its TTL to ARGV[1] ms. It returns the set's size, or -1 (nothing added) past the bound.
const addLua = `
local fresh = 0
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then fresh = fresh + 1 end
end
local size = redis.call('SCARD', KEYS[1]) + fresh
if size > tonumber(ARGV[2]) then return -1 end
redis.call('SADD', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return size
`

// New keeps sets under prefix for ttl (<= 0: node.DefaultSubscriptionTTL) after their last use.
func New(client rueidis.Client, prefix string, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = node.DefaultSubscriptionTTL
	}
	return &Store{client: client, prefix: prefix, ttl: ttl, add: rueidis.NewLuaScript(addLua)}
}

// key is the set of clientID.
func (s *Store) key(clientID string) string { return s.prefix + ":subs:{" + clientID + "}" }

// Get returns the client's topics, sorted, and renews their TTL, in one round trip.
func (s *Store) Get(ctx context.Context, clientID string) ([]string, error) {
	key := s.key(clientID)
	res := s.client.DoMulti(ctx,
		s.client.B().Smembers().Key(key).Build(),
		s.client.B().Pexpire().Key(key).Milliseconds(s.ttl.Milliseconds()).Build())
	topics, err := res[0].AsStrSlice()
	if err == nil {
		err = res[1].Error()
	}
	if err != nil {
		return nil, fmt.Errorf("subsredis: get %q: %w", clientID, redisx.Classify(ctx, err))
	}
	if len(topics) == 0 {
		return nil, nil
	}
	slices.Sort(topics)
	return topics, nil
}

// Add adds topics to the client's set unless it would then hold more than max topics.
func (s *Store) Add(ctx context.Context, clientID string, topics []string, max int) error {
	topics = slices.Compact(slices.Sorted(slices.Values(topics)))
	if len(topics) == 0 {
		return nil
	}
	args := append([]string{strconv.FormatInt(s.ttl.Milliseconds(), 10), strconv.Itoa(max)}, topics...)
	size, err := s.add.Exec(ctx, s.client, []string{s.key(clientID)}, args).AsInt64()
	if err != nil {
		return fmt.Errorf("subsredis: add to %q: %w", clientID, redisx.Classify(ctx, err))
	}
	if size < 0 {
		return fmt.Errorf("%w: adding %d topics to those of %q, at most %d", node.ErrTooManySubscriptions, len(topics), clientID, max)
	}
	return nil
}

// Remove takes topics out of the client's set and renews its TTL (Redis drops a set emptied).
func (s *Store) Remove(ctx context.Context, clientID string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	key := s.key(clientID)
	for _, res := range s.client.DoMulti(ctx,
		s.client.B().Srem().Key(key).Member(topics...).Build(),
		s.client.B().Pexpire().Key(key).Milliseconds(s.ttl.Milliseconds()).Build()) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("subsredis: remove from %q: %w", clientID, redisx.Classify(ctx, err))
		}
	}
	return nil
}
