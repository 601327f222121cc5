package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Server-side subscriptions (POST and DELETE /clients/{clientId}/subscriptions, a function's
// "subscribe" answer) are kept per client in a SubscriptionStore, so that they outlive the connection:
// a client stream opened later, on any node, reads its stored topics beside its URL's. The node keeps
// them in memory when it runs alone (MemorySubscriptions); with Redis cmd/edge gives it a store every
// node reads (subsredis), since a reconnecting client may land on another node.

// DefaultSubscriptionTTL is how long a client's stored subscriptions last without a change or an open
// of one of its streams.
const DefaultSubscriptionTTL = 24 * time.Hour

// ErrTooManySubscriptions is what SubscriptionStore.Add wraps when the topics would take the client's
// set past its bound; nothing is added then.
var ErrTooManySubscriptions = errors.New("too many server-side subscriptions")

// SubscriptionStore keeps each client's set of server-side topics, canonical. Every call renews the
// set's TTL (a set nobody changes or opens a stream for expires). Errors of a shared store being
// unreachable wrap stateerr.ErrUnavailable.
type SubscriptionStore interface {
	// Get returns the client's topics, sorted (none: nil), and renews their TTL: it is called when a
	// stream of the client opens.
	Get(ctx context.Context, clientID string) ([]string, error)
	// Add adds topics to the client's set unless the set would then hold more than max topics
	// (ErrTooManySubscriptions, nothing added).
	Add(ctx context.Context, clientID string, topics []string, max int) error
	// Remove takes topics out of the client's set; absent ones are ignored.
	Remove(ctx context.Context, clientID string, topics []string) error
}

// MemorySubscriptions is the SubscriptionStore of a node alone. Expired sets are dropped as they are
// read, and all at once every so often as sets are added, so that clients that never come back do not
// pile up. The zero value is not ready: use NewMemorySubscriptions.
type MemorySubscriptions struct {
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	sets      map[string]memorySet
	nextSweep time.Time
}

// memorySet is one client's stored topics and when they expire.
type memorySet struct {
	topics  []string // sorted, distinct
	expires time.Time
}

var _ SubscriptionStore = (*MemorySubscriptions)(nil)

// NewMemorySubscriptions keeps sets for ttl (<= 0: DefaultSubscriptionTTL) after their last use.
func NewMemorySubscriptions(ttl time.Duration) *MemorySubscriptions {
	if ttl <= 0 {
		ttl = DefaultSubscriptionTTL
	}
	return &MemorySubscriptions{ttl: ttl, now: time.Now, sets: make(map[string]memorySet)}
}

// Get returns the client's live set and renews it.
func (s *MemorySubscriptions) Get(_ context.Context, clientID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	set, ok := s.sets[clientID]
	if !ok {
		return nil, nil
	}
	if !now.Before(set.expires) {
		delete(s.sets, clientID)
		return nil, nil
	}
	set.expires = now.Add(s.ttl)
	s.sets[clientID] = set
	return slices.Clone(set.topics), nil
}

// Add adds topics to the client's set, bounded by max.
func (s *MemorySubscriptions) Add(_ context.Context, clientID string, topics []string, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	set := s.sets[clientID]
	if !now.Before(set.expires) {
		set.topics = nil
	}
	merged := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(set.topics), topics...))))
	if len(merged) > max {
		return fmt.Errorf("%w: %d topics, at most %d", ErrTooManySubscriptions, len(merged), max)
	}
	s.sets[clientID] = memorySet{topics: merged, expires: now.Add(s.ttl)}
	return nil
}

// Remove takes topics out of the client's set; an emptied set is dropped.
func (s *MemorySubscriptions) Remove(_ context.Context, clientID string, topics []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	set, ok := s.sets[clientID]
	if !ok {
		return nil
	}
	set.topics = slices.DeleteFunc(set.topics, func(t string) bool { return slices.Contains(topics, t) })
	if len(set.topics) == 0 || !now.Before(set.expires) {
		delete(s.sets, clientID)
		return nil
	}
	set.expires = now.Add(s.ttl)
	s.sets[clientID] = set
	return nil
}

// Len is the count of sets held, expired ones not yet dropped included.
func (s *MemorySubscriptions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sets)
}

// sweepLocked drops every expired set, at most once a tenth of the TTL: the cost of a full pass is
// spread over the adds of that time. The caller holds mu.
func (s *MemorySubscriptions) sweepLocked(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	s.nextSweep = now.Add(s.ttl / 10)
	for id, set := range s.sets {
		if !now.Before(set.expires) {
			delete(s.sets, id)
		}
	}
}
