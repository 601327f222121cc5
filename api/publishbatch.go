package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// MaxBatchItems bounds the items of one POST /publish, so one request cannot hold Redis for long.
const MaxBatchItems = 1000

// batchBody is the body of POST /publish: events to topics, each as POST /publish/{topic} takes it.
type batchBody struct {
	Items []json.RawMessage `json:"items"`
}

// batchItem is one item: its topic beside the fields of a publish body.
type batchItem struct {
	Topic string `json:"topic"`
	publishBody
}

// itemResult answers one item: its event's ID, or why it was not published.
type itemResult struct {
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// handlePublishBatch answers POST /publish {"items": [{"topic", "event", "data", "id"}, …]}: every
// valid item is published in one round trip to Redis (pipelined), and the answer has one result per
// item, in order. A batch whose every item failed for want of Redis is answered 503.
func (c *Core) handlePublishBatch(ctx *fasthttp.RequestCtx) {
	tctx := otel.GetTextMapPropagator().Extract(context.Background(), metrics.RequestHeaderCarrier{Header: &ctx.Request.Header})
	tctx, span := otel.Tracer("sseedge/api").Start(tctx, "publish batch", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if c.stats().Draining {
		httpjson.WriteError(ctx, fasthttp.StatusServiceUnavailable, "draining", "node is shutting down")
		return
	}
	var body batchBody
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_json", "body must be a JSON object with items: "+err.Error())
		return
	}
	if len(body.Items) == 0 || len(body.Items) > MaxBatchItems {
		httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_items", "items must hold 1 to "+strconv.Itoa(MaxBatchItems)+" events")
		return
	}
	span.SetAttributes(attribute.Int("sseedge.batch", len(body.Items)))
	results := make([]itemResult, len(body.Items))
	items := make([]fanout.BatchItem, 0, len(body.Items))
	at := make([]int, 0, len(body.Items))
	for i, raw := range body.Items {
		var it batchItem
		if err := json.Unmarshal(raw, &it); err != nil {
			results[i] = itemResult{Error: "item must be a JSON object: " + err.Error(), Code: "bad_json"}
			continue
		}
		topic, err := fanout.ParseTopic(it.Topic)
		if err != nil {
			results[i] = itemResult{Error: err.Error(), Code: "bad_topic"}
			continue
		}
		if node.Reserved(topic) {
			results[i] = itemResult{Error: "topics under " + node.ReservedTopicPrefix + " are the edge's own", Code: "reserved_topic"}
			continue
		}
		ev, aerr := it.event()
		if aerr != nil {
			results[i] = itemResult{Error: aerr.msg, Code: aerr.code}
			continue
		}
		items, at = append(items, fanout.BatchItem{Key: topic, Event: ev}), append(at, i)
	}
	unavailable := 0
	for j, r := range c.node.PublishBatch(tctx, transport.Topic, items) {
		i := at[j]
		switch {
		case r.Err == nil:
			results[i] = itemResult{ID: r.ID}
		case errors.Is(r.Err, fanout.ErrUnavailable):
			unavailable++
			results[i] = itemResult{Error: r.Err.Error(), Code: "state_unavailable"}
		case errors.Is(r.Err, fanout.ErrFrameTooLarge):
			results[i] = itemResult{Error: r.Err.Error(), Code: "event_too_large"}
		default:
			results[i] = itemResult{Error: r.Err.Error(), Code: "bad_event"}
		}
	}
	status := fasthttp.StatusOK
	if unavailable == len(results) {
		status = fasthttp.StatusServiceUnavailable
	}
	httpjson.Write(ctx, status, map[string]any{"results": results})
}
