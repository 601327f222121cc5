package node

import (
	"context"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// PublishBatch publishes items to streams of one kind as Publish does each, in one round trip to Redis
// when there is one (see fanout.Hub.PublishBatch); results[i] answers items[i].
func (n *Node) PublishBatch(ctx context.Context, kind transport.Kind, items []fanout.BatchItem) []fanout.BatchResult {
	out := n.hubs[kind].PublishBatch(ctx, items)
	for _, r := range out {
		if r.Err == nil && r.Delivered != fanout.Replayed {
			n.cfg.Metrics.EventPublished()
			n.published.Add(1)
		}
	}
	return out
}
