package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// publishBody is the body of POST /publish/{topic} and POST /clients/{id}/events.
type publishBody struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    string          `json:"id"`
}

// apiError is a refusal with its status and stable code.
type apiError struct {
	status int
	code   string
	msg    string
}

// decodeEvent reads a publish body. A JSON string in data is sent as its text; any other JSON value is
// sent compacted to one line.
func decodeEvent(body []byte) (fanout.Event, *apiError) {
	var pb publishBody
	if err := json.Unmarshal(body, &pb); err != nil {
		return fanout.Event{}, &apiError{fasthttp.StatusBadRequest, "bad_json", "body must be a JSON object: " + err.Error()}
	}
	return pb.event()
}

// event is the event a decoded publish body describes.
func (pb publishBody) event() (fanout.Event, *apiError) {
	if len(pb.Data) == 0 {
		return fanout.Event{}, &apiError{fasthttp.StatusBadRequest, "missing_data", "field data is required"}
	}
	ev := fanout.Event{ID: pb.ID, Name: pb.Event}
	if pb.Data[0] == '"' {
		var text string
		if err := json.Unmarshal(pb.Data, &text); err != nil {
			return ev, &apiError{fasthttp.StatusBadRequest, "bad_json", "data: " + err.Error()}
		}
		if text == "" {
			return ev, &apiError{fasthttp.StatusBadRequest, "empty_data", "data must not be empty: EventSource drops events without data"}
		}
		ev.Data = []byte(text)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, pb.Data); err != nil {
			return ev, &apiError{fasthttp.StatusBadRequest, "bad_json", "data: " + err.Error()}
		}
		ev.Data = buf.Bytes()
	}
	return ev, nil // its name and ID are checked by the hub, which answers bad_event
}

func (c *Core) handlePublish(ctx *fasthttp.RequestCtx) {
	topic, err := fanout.ParseTopic(userValue(ctx, "topic"))
	if err != nil {
		httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_topic", err.Error())
		return
	}
	if node.Reserved(topic) {
		httpjson.WriteError(ctx, fasthttp.StatusForbidden, "reserved_topic", "topics under "+node.ReservedTopicPrefix+" are the edge's own")
		return
	}
	c.publish(ctx, transport.Topic, topic)
}

func (c *Core) handleClientEvent(ctx *fasthttp.RequestCtx) {
	id := userValue(ctx, "clientId")
	if err := clientid.Check(id); err != nil {
		httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_client_id", clientid.Rule)
		return
	}
	c.publish(ctx, transport.Client, id)
}

// publish answers POST /publish/{topic} and POST /clients/{id}/events under a "publish" span that
// continues the caller's trace (W3C traceparent) and reaches the engine, so a shared publish's Redis call
// and its delivery on every node join that trace.
func (c *Core) publish(ctx *fasthttp.RequestCtx, kind transport.Kind, key string) {
	kindName, keyAttr := "topic", "sseedge.topic"
	if kind == transport.Client {
		kindName, keyAttr = "client", "sseedge.client_id"
	}
	// Not the RequestCtx as parent: its Done channel is not a context package one, so every timeout
	// derived from it below would cost a goroutine.
	tctx := otel.GetTextMapPropagator().Extract(context.Background(), metrics.RequestHeaderCarrier{Header: &ctx.Request.Header})
	tctx, span := otel.Tracer("sseedge/api").Start(tctx, "publish", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("sseedge.stream", kindName), attribute.String(keyAttr, key)))
	defer span.End()
	fail := func(status int, code, msg string) {
		span.SetStatus(codes.Error, msg)
		span.SetAttributes(attribute.String("error.type", code), attribute.Int("http.response.status_code", status))
		httpjson.WriteError(ctx, status, code, msg)
	}

	if c.stats().Draining {
		fail(fasthttp.StatusServiceUnavailable, "draining", "node is shutting down")
		return
	}
	ev, aerr := decodeEvent(ctx.PostBody())
	if aerr != nil {
		fail(aerr.status, aerr.code, aerr.msg)
		return
	}
	// A publisher that got no answer, or a 503 with Sseedge-Applied: unknown, retries with the same key.
	ev.IdempotencyKey = string(ctx.Request.Header.Peek("Idempotency-Key"))
	id, delivered, err := c.node.Publish(tctx, kind, key, ev)
	if errors.Is(err, fanout.ErrUnavailable) {
		applied := "no" // the engine's deadline makes a 503 final, but for a connection lost in flight
		if errors.Is(err, fanout.ErrOutcomeUnknown) {
			applied = "unknown"
		}
		ctx.Response.Header.Set("Sseedge-Applied", applied)
		span.SetAttributes(attribute.String("sseedge.applied", applied))
		fail(fasthttp.StatusServiceUnavailable, "state_unavailable", err.Error())
		return
	}
	if errors.Is(err, fanout.ErrIdempotencyConflict) {
		c.cfg.Metrics.IdempotentPublish(true)
		fail(fasthttp.StatusUnprocessableEntity, "idempotency_key_reused", err.Error())
		return
	}
	if delivered == fanout.Replayed { // a retry: the first publish's ID, nothing published again
		c.cfg.Metrics.IdempotentPublish(false)
		span.SetAttributes(attribute.String("sseedge.event_id", id), attribute.Bool("sseedge.replayed", true))
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
		httpjson.Write(ctx, fasthttp.StatusOK, map[string]any{"id": id})
		return
	}
	if errors.Is(err, fanout.ErrFrameTooLarge) {
		fail(fasthttp.StatusRequestEntityTooLarge, "event_too_large", err.Error()+" (MAX_QUEUE_BYTES); each line of data costs 7 bytes more framed")
		return
	}
	if err != nil {
		fail(fasthttp.StatusBadRequest, "bad_event", err.Error())
		return
	}
	span.SetAttributes(attribute.String("sseedge.event_id", id))
	body := map[string]any{"id": id}
	if delivered >= 0 { // known only when the node is alone
		body["delivered"] = delivered
		span.SetAttributes(attribute.Int("sseedge.delivered", delivered))
	}
	httpjson.Write(ctx, fasthttp.StatusOK, body)
}
