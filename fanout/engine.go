package fanout

import (
	"context"

	"github.com/sseedge/sseedge/internal/stateerr"
)

// ErrUnavailable is wrapped by engine errors when the shared state (Redis) cannot be reached. Callers
// answer 503 rather than wait. It is stateerr.ErrUnavailable, the one such error of the node.
var ErrUnavailable = stateerr.ErrUnavailable

// Engine keeps the history of a hub's streams and carries their events between nodes. Without one a hub
// keeps history in memory and delivers locally: one node. With one (Redis), a publish on any node
// reaches the hub of every node, this one included, exactly once, through the Local the hub attaches.
type Engine interface {
	// Attach is called once by NewHub with the hub it feeds.
	Attach(local Local)
	// Publish assigns ev an ID, keeps it in key's history and broadcasts it to every node.
	Publish(ctx context.Context, key string, ev Event) (id string, err error)
	// Since returns key's frames published after the one with lastID, oldest first, and false when
	// lastID is not retained (then it returns what is).
	Since(ctx context.Context, key, lastID string) (frames []*Frame, found bool, err error)
	// End has every node end key's streams (deliver EndFrame to them), keeping nothing in history.
	End(ctx context.Context, key string) error
	// Refresh has every node deliver RefreshFrame(grant) to key's own streams, keeping nothing in history.
	Refresh(ctx context.Context, key string, grant []byte) error
}

// Local is a hub as its engine sees it.
type Local interface {
	// Deliver queues a frame received from another node (or this one, through the engine) to the
	// local subscribers of key and of its ancestors.
	Deliver(key string, f *Frame)
	// Watching reports whether this node holds a subscription to any stream of root, so an engine
	// keeps per-root state only for roots it serves.
	Watching(root string) bool
}

// Interested is an Engine that routes by interest: the hub tells it when this node begins to watch a
// root (its first subscription to any stream under the root) and when it stops (its last one gone), so
// that the node hears a root's events only while it serves them. Both are called with the root's shard
// lock held, in the order the changes happen, so they must only queue the change.
type Interested interface {
	Watch(root string)
	Unwatch(root string)
}

// Opener is the hub as an Interested engine sees it: DeliverOpening queues a frame read from history
// for the streams that opened while the engine's subscription to key's root was being made. Streams
// that resumed from a Last-Event-ID read history themselves, so for them it is a live frame that their
// replay may already have had.
type Opener interface {
	DeliverOpening(key string, f *Frame)
}

// BatchPublisher is an Engine that publishes many events in one round trip (pipelined), as
// Hub.PublishBatch uses when it can.
type BatchPublisher interface {
	// PublishBatch is Publish for each item, in order; results[i] answers items[i].
	PublishBatch(ctx context.Context, items []BatchItem) []BatchResult
}

// BatchItem is one event of a batch publish, to key.
type BatchItem struct {
	Key   string
	Event Event
}

// BatchResult answers one item of a batch publish as Publish would: its ID, how many local
// subscribers it reached (-1 with an engine, Replayed for an idempotent retry), or its error.
type BatchResult struct {
	ID        string
	Delivered int
	Err       error
}
