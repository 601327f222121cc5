package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// TopicPublisher is what a GRIP publish needs of the node: publish an event to a topic, and end a
// topic's streams (action close). *node.Node implements it.
type TopicPublisher interface {
	Publish(ctx context.Context, kind transport.Kind, key string, ev fanout.Event) (id string, delivered int, err error)
	EndTopicStreams(ctx context.Context, topic string) error
}

// GripPublishConfig configures POST /publish/ (the empty topic) in GRIP's format. Node is required.
type GripPublishConfig struct {
	Node TopicPublisher
	// Authorizer checks each publish (the admin token or a GRIP control JWT); nil leaves it open, as
	// every API route is on a node without an admin token.
	Authorizer *grip.Authorizer
	Limits     grip.Limits
	// Timeout bounds the engine calls of one publish. Default 10s.
	Timeout time.Duration
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// GripPublish serves POST /publish/ with {"items": [...]}, as @fanoutio/grip's Publisher posts it to
// {control URI}/publish/: each item's events are published to its channel's topic, in order, and
// action close ends the channel's held streams.
type GripPublish struct {
	cfg GripPublishConfig
}

// NewGripPublish checks cfg and returns the handler.
func NewGripPublish(cfg GripPublishConfig) (*GripPublish, error) {
	if cfg.Node == nil {
		return nil, errors.New("api: GripPublishConfig.Node is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDeliverTimeout
	}
	return &GripPublish{cfg: cfg}, nil
}

// refuse answers a refused publish and counts it.
func (p *GripPublish) refuse(rc *fasthttp.RequestCtx, status int, code, msg string) {
	p.cfg.Metrics.GripPublishRefused(code)
	httpjson.WriteError(rc, status, code, msg)
}

// Serve answers one GRIP publish. Every item is parsed before any is applied; items are then applied in
// order, and the first that fails stops the rest (the answer says how many were applied).
func (p *GripPublish) Serve(rc *fasthttp.RequestCtx) {
	if a := p.cfg.Authorizer; a != nil {
		if err := a.Authorize(string(rc.Request.Header.Peek(fasthttp.HeaderAuthorization))); err != nil {
			rc.Response.Header.Set("WWW-Authenticate", `Bearer realm="sseedge"`)
			p.refuse(rc, fasthttp.StatusUnauthorized, string(grip.CodeUnauthorized), err.Error())
			return
		}
	}
	items, err := grip.ParsePublish(rc.PostBody(), p.cfg.Limits)
	if err != nil {
		var ge *grip.Error
		if !errors.As(err, &ge) {
			ge = &grip.Error{Code: grip.CodeMalformed, Status: fasthttp.StatusBadRequest}
		}
		p.refuse(rc, ge.Status, string(ge.Code), err.Error())
		return
	}
	for _, it := range items {
		if node.Reserved(it.Topic) {
			p.refuse(rc, fasthttp.StatusForbidden, "reserved_topic", fmt.Sprintf("channel %q: topics under %s are the edge's own", it.Channel, node.ReservedTopicPrefix))
			return
		}
	}
	tctx := otel.GetTextMapPropagator().Extract(context.Background(), metrics.RequestHeaderCarrier{Header: &rc.Request.Header})
	ctx, cancel := context.WithTimeout(tctx, p.cfg.Timeout)
	defer cancel()
	ids := []string{}
	sent, closed := 0, 0
	defer func() {
		p.cfg.Metrics.GripItems("send", sent)
		p.cfg.Metrics.GripItems("close", closed)
	}()
	for i, it := range items {
		if it.Action == grip.ActionClose {
			if err := p.cfg.Node.EndTopicStreams(ctx, it.Topic); err != nil {
				p.failed(rc, i, ids, err)
				return
			}
			closed++
			continue
		}
		for _, ev := range it.Events {
			id, _, err := p.cfg.Node.Publish(ctx, transport.Topic, it.Topic, ev)
			if err != nil {
				p.failed(rc, i, ids, err)
				return
			}
			ids = append(ids, id)
		}
		sent++
	}
	httpjson.Write(rc, fasthttp.StatusOK, map[string]any{"items": len(items), "ids": ids})
}

// failed answers a publish whose item i could not be applied; ids are the events published before it.
func (p *GripPublish) failed(rc *fasthttp.RequestCtx, i int, ids []string, err error) {
	status, code := fasthttp.StatusBadRequest, "bad_event"
	switch {
	case errors.Is(err, fanout.ErrUnavailable):
		status, code = fasthttp.StatusServiceUnavailable, "state_unavailable"
	case errors.Is(err, fanout.ErrFrameTooLarge):
		status, code = fasthttp.StatusRequestEntityTooLarge, "event_too_large"
	}
	p.cfg.Logger.Warn("GRIP publish failed", "item", i, "published_before", len(ids), "err", err)
	p.cfg.Metrics.GripPublishRefused(code)
	httpjson.Write(rc, status, map[string]any{
		"error": fmt.Sprintf("items[%d]: %v", i, err), "code": code, "applied_items": i, "ids": ids,
	})
}
