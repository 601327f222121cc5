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
	if len(items) == 0 {
		return nil
	}
	parts, err := n.partitions(ctx, items)
	if err != nil {
		return failed(len(items), err)
	}
	ctx, span := n.e.startCall(ctx, "redis publish", "EVALSHA")
	defer span.End()
	span.SetAttributes(attribute.Int("sseedge.batch", len(items)))
	return n.publish(ctx, items, parts)
}
