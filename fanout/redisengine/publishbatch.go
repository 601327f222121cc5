package redisengine

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sseedge/sseedge/fanout"
)

// PublishBatch publishes each item with the publish script, all pipelined in one DoMulti (rueidis
// sends them in one write per Redis node), under one "redis publish" span: a batch costs one round
// trip, not one per event. Items of one root are run in their order, so their IDs and bus order are
// the batch's. Each answer means what Publish's does, deadline included.
func (n *namespace) PublishBatch(ctx context.Context, items []fanout.BatchItem) []fanout.BatchResult {
	e := n.e
	out := make([]fanout.BatchResult, len(items))
	if len(items) == 0 {
		return out
	}
	ctx, span := e.startCall(ctx, "redis publish", "EVALSHA")
	defer span.End()
	span.SetAttributes(attribute.Int("sseedge.batch", len(items)))
	parts := make([]int, len(items))
	for i, it := range items {
		parts[i] = e.partition(n.ns, fanout.Root(it.Key))
		if _, ok := e.bound(parts[i], time.Now()); !ok {
			if err := e.syncClock(ctx, parts[i]); err != nil {
				for j := range out {
					out[j].Err = err
				}
				return out
			}
		}
	}
	sent := time.Now()
	deadline := sent.Add(e.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-e.cfg.PublishGrace).Before(deadline) {
		deadline = d.Add(-e.cfg.PublishGrace)
	}
	if !deadline.After(sent) {
		for j := range out {
			out[j].Err = fmt.Errorf("redisengine: publish: %w: no time left before the caller's deadline", fanout.ErrUnavailable)
		}
		return out
	}
	cctx, cancel := context.WithDeadline(ctx, deadline.Add(e.cfg.PublishGrace))
	defer cancel()
	traceparent := traceparentOf(e, ctx)
	execs := make([]rueidis.LuaExec, len(items))
	fps := make([]string, len(items))
	for i, it := range items {
		low, _ := e.bound(parts[i], sent)
		execs[i], fps[i] = n.exec(parts[i], it.Key, it.Event, traceparent, (e.local(deadline)+low)/1000)
	}
	results := publishScript.ExecMulti(cctx, e.client, execs...)
	recv := time.Now()
	e.observeCommand("EVALSHA", recv.Sub(sent))
	for i, res := range results {
		out[i].ID, out[i].Err = n.answer(ctx, parts[i], items[i].Key, items[i].Event, fps[i], res, sent, recv)
	}
	return out
}
