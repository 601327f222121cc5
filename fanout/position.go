package fanout

import (
	"context"
	"fmt"
)

// OriginID is the position of a key that retained nothing when a stream subscribed to it: resuming
// from it replays whatever the key retains, with no reset. No event has it (generated IDs in memory
// start at the hub's start time, and Redis refuses 0-0).
const OriginID = "0-0"

// Positioner is an Engine that can say where a key's shared history ends, so that a multi-topic
// stream's cursor names a position in every root from the moment it subscribes (redisengine implements
// it). An engine without it leaves such a stream's position empty until its first event there.
type Positioner interface {
	// Latest returns the ID of the newest event retained in key's root ("" when none), an ID from
	// which Since(key, id) reads key's later events.
	Latest(ctx context.Context, key string) (string, error)
}

// Latest returns the position a new subscription of key starts from: the ID of the newest event in
// key's history, "" when there is none (or the engine cannot tell). Subscribing with resume from it
// (Subscribe(key, sub, true, id)) then loses nothing published in between, and replays nothing older.
func (h *Hub) Latest(ctx context.Context, key string) (string, error) {
	if h.cfg.Engine != nil {
		p, ok := h.cfg.Engine.(Positioner)
		if !ok {
			return "", nil
		}
		id, err := p.Latest(ctx, key)
		if err != nil {
			return "", fmt.Errorf("fanout: latest of %q: %w", key, err)
		}
		return id, nil
	}
	s := h.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[key]
	if n == nil || n.hist.len() == 0 {
		return "", nil
	}
	return n.hist.at(n.hist.len() - 1).ID, nil
}
