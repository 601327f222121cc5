package redisengine

import (
	"context"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sseedge/sseedge/fanout"
)

// PublishBatch publishes items under one "redis publish" span: one publish script call for the items of
// each root, all pipelined in one round trip, so a batch costs about what one publish does. Items of one
// root are applied in their order, so their IDs and bus order are the batch's. Each answer means what
// Publish's does, deadline included.
func (n *namespace) PublishBatch(ctx context.Context, items []fanout.BatchItem) []fanout.BatchResult {
	out := make([]fanout.BatchResult, len(items))
	if len(items) == 0 {
		return out
	}
	parts, err := n.partitions(ctx, items)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	ctx, span := n.e.startCall(ctx, "redis publish", "EVALSHA")
	defer span.End()
	span.SetAttributes(attribute.Int("sseedge.batch", len(items)))
	return n.publish(ctx, items, parts)
}
