package fanout

import (
	"context"
	"errors"
)

// PublishBatch publishes each item as Publish would, and answers each in order. With an engine that
// is a BatchPublisher, the valid items go to it at once (one pipelined round trip to Redis), so a
// batch costs about what one publish does; otherwise they are published one after another.
func (h *Hub) PublishBatch(ctx context.Context, items []BatchItem) []BatchResult {
	out := make([]BatchResult, len(items))
	bp, ok := h.cfg.Engine.(BatchPublisher)
	if !ok {
		for i, it := range items {
			out[i].ID, out[i].Delivered, out[i].Err = h.Publish(ctx, it.Key, it.Event)
		}
		return out
	}
	valid := make([]BatchItem, 0, len(items))
	at := make([]int, 0, len(items))
	for i, it := range items {
		if err := ValidateIdempotencyKey(it.Event.IdempotencyKey); err != nil {
			out[i].Err = err
			continue
		}
		if err := h.validateEvent(it.Event); err != nil {
			out[i].Err = err
			continue
		}
		valid, at = append(valid, it), append(at, i)
	}
	for j, r := range bp.PublishBatch(ctx, valid) {
		if errors.Is(r.Err, ErrReplayed) {
			r.Delivered, r.Err = Replayed, nil
		} else if r.Err == nil {
			r.Delivered = -1
		}
		out[at[j]] = r
	}
	return out
}
