package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fasthttp/router"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/transport"
)

// FunctionCaller is what the GRIP route needs of the invoker: one call of a function, with its
// breakers, retries, deadline and trace. *invoker.Invoker implements it.
type FunctionCaller interface {
	Invoke(ctx context.Context, fn registry.Function, req invoker.Request) (invoker.Result, error)
}

// GripConfig configures the GRIP route. Store, Invoker, Holder and Signer are required.
type GripConfig struct {
	Store   registry.Store
	Invoker FunctionCaller
	// Holder holds the streams a function's Grip-Hold: stream asks for (the transport).
	Holder transport.Holder
	// Signer makes the Grip-Sig of every call (from GRIP_KEY).
	Signer *grip.Signer
	// Limits bound what one answer may ask (channels, header and body bytes, events).
	Limits     grip.Limits
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
	Propagator propagation.TextMapPropagator
}

// Grip serves /grip/{fn}/{path…}: it forwards the client's request to a function registered with
// "grip": true and, as the function answers, holds an SSE stream on its channels or passes the answer
// through (docs/grip.md).
type Grip struct {
	cfg GripConfig
	log *slog.Logger
}

// NewGrip checks cfg and returns the route's handler.
func NewGrip(cfg GripConfig) (*Grip, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("api: GripConfig.Store is required")
	case cfg.Invoker == nil:
		return nil, errors.New("api: GripConfig.Invoker is required")
	case cfg.Holder == nil:
		return nil, errors.New("api: GripConfig.Holder is required")
	case cfg.Signer == nil:
		return nil, errors.New("api: GripConfig.Signer is required (GRIP_KEY)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Propagator == nil {
		cfg.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, otel.GetTextMapPropagator())
	}
	return &Grip{cfg: cfg, log: cfg.Logger}, nil
}

// gripMethods are the methods forwarded to GRIP functions.
var gripMethods = [...]string{fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost, fasthttp.MethodPut,
	fasthttp.MethodPatch, fasthttp.MethodDelete}

// Register mounts /grip/{fn}/{path…} (and /grip/{fn}, /grip/{fn}/) for every forwarded method, as one
// catch-all split here: the router would not match /grip/{fn}/ with both /grip/{fn} and
// /grip/{fn}/{path:*} routes. The function decides who may call it (its own cookies or tokens), so the
// route takes no token of the edge's.
func (g *Grip) Register(r *router.Router) {
	for _, m := range gripMethods {
		r.Handle(m, "/grip/{grip:*}", g.serve)
	}
}

// gripTarget splits /grip/{fn}/{path…} into the function's name and the path it is forwarded ("/" at
// least).
func gripTarget(rc *fasthttp.RequestCtx) (name, path string) {
	name, rest, _ := strings.Cut(userValue(rc, "grip"), "/")
	return name, "/" + rest
}

// serve forwards one request and answers as the function says.
func (g *Grip) serve(rc *fasthttp.RequestCtx) {
	name, path := gripTarget(rc)
	fn, ok := g.function(rc, name)
	if !ok {
		return
	}
	sig, err := g.cfg.Signer.Sign()
	if err != nil {
		g.fail(rc, fn.Name, fasthttp.StatusInternalServerError, "grip_sign_failed", err)
		return
	}
	method := string(rc.Method())
	if method != fasthttp.MethodGet && method != fasthttp.MethodHead && !fn.Idempotent {
		fn.Retry.MaxAttempts = 1 // a call with effects is re-sent only when the function says it is safe
	}
	req := invoker.Request{
		InvocationID: uuid.NewString(),
		Payload:      append([]byte(nil), rc.PostBody()...),
		Header:       map[string]string{grip.HeaderSig: sig},
		Forward:      forwardOf(rc, method, path),
	}
	// Not the RequestCtx as parent: its Done channel is not a context package one.
	ctx := g.cfg.Propagator.Extract(context.Background(), metrics.RequestHeaderCarrier{Header: &rc.Request.Header})
	res, err := g.cfg.Invoker.Invoke(ctx, fn, req)
	if err != nil {
		var ie *invoker.Error
		if !errors.As(err, &ie) {
			ie = &invoker.Error{Code: invoker.CodeUpstreamError, Message: err.Error()}
		}
		g.fail(rc, fn.Name, StatusFor(ie.Code), string(ie.Code), err)
		return
	}
	in, err := grip.ParseInstruct(res.Status, res.Header, res.Body, g.cfg.Limits)
	if err != nil {
		var ge *grip.Error
		if !errors.As(err, &ge) {
			ge = &grip.Error{Code: grip.CodeMalformed, Status: fasthttp.StatusBadGateway, Msg: err.Error()}
		}
		g.fail(rc, fn.Name, ge.Status, string(ge.Code), err)
		return
	}
	if in.Hold == grip.HoldNone {
		g.cfg.Metrics.GripRequest("proxied")
		proxy(rc, in)
		return
	}
	spec, err := holdSpec(rc, fn.Name, in, g.cfg.Limits)
	if err != nil {
		code := grip.CodeBadChannel
		switch {
		case errors.Is(err, fanout.ErrTooManyTopics):
			code = grip.CodeTooMany
		case errors.Is(err, errKeepAliveTooLarge):
			code = grip.CodeTooLarge
		}
		g.fail(rc, fn.Name, fasthttp.StatusBadGateway, string(code), err)
		return
	}
	g.cfg.Holder.HoldStream(rc, spec)
	// The transport answers a stream it will not hold before taking the connection (an origin not
	// allowed) with an error in the response; a held stream leaves the response alone. (Refusals after
	// it took the connection, such as too many streams from the address, are the transport's to count.)
	if rc.Response.StatusCode() >= 400 {
		g.cfg.Metrics.GripRequest("stream_refused")
		return
	}
	g.cfg.Metrics.GripRequest("held")
}

// function is the GRIP function called name, or false once the client has its 404 or 503.
func (g *Grip) function(rc *fasthttp.RequestCtx, name string) (registry.Function, bool) {
	if !registry.ValidName(name) {
		notFound(rc, name)
		return registry.Function{}, false
	}
	fn, err := g.cfg.Store.Get(rc, name)
	switch {
	case errors.Is(err, registry.ErrNotFound) || err == nil && !fn.Grip:
		httpjson.WriteError(rc, fasthttp.StatusNotFound, "not_found", fmt.Sprintf("no GRIP function %q is registered", name))
		return registry.Function{}, false
	case err != nil:
		g.log.Error("function registry failed", "op", "get", "err", err)
		status := fasthttp.StatusInternalServerError
		if errors.Is(err, registry.ErrUnavailable) {
			status = fasthttp.StatusServiceUnavailable
		}
		httpjson.WriteError(rc, status, "state_unavailable", "function registry: "+err.Error())
		return registry.Function{}, false
	}
	return fn, true
}

// fail answers a call that produced no usable answer, logs it and counts it under code.
func (g *Grip) fail(rc *fasthttp.RequestCtx, fnName string, status int, code string, err error) {
	g.cfg.Metrics.GripRequest(code)
	g.log.Warn("GRIP call failed", "function", fnName, "path", string(rc.Path()), "status", status, "code", code, "err", err)
	httpjson.WriteError(rc, status, code, err.Error())
}

// forwardOf is what the function gets of the client's request: method, the path after /grip/{fn}, the
// query and the headers grip.ForwardRequestHeader lets through (cookies, Authorization,
// Last-Event-ID, …; never a Grip-* header of the client's).
func forwardOf(rc *fasthttp.RequestCtx, method, path string) *invoker.Forward {
	fw := &invoker.Forward{
		Method:      method,
		Path:        path,
		RawQuery:    string(rc.URI().QueryString()),
		ContentType: string(rc.Request.Header.ContentType()),
	}
	for k, v := range rc.Request.Header.All() {
		name := string(k)
		if !grip.ForwardRequestHeader(name) || strings.EqualFold(name, fasthttp.HeaderContentType) {
			continue
		}
		fw.Header = append(fw.Header, [2]string{name, string(v)})
	}
	return fw
}

// proxy writes an answer without Grip-Hold as the client's response.
func proxy(rc *fasthttp.RequestCtx, in *grip.Instruct) {
	rc.SetStatusCode(in.Status)
	for name, vs := range in.Header {
		for _, v := range vs {
			rc.Response.Header.Add(name, v)
		}
	}
	if ct := in.Header.Get("Content-Type"); ct == "" {
		rc.Response.Header.SetNoDefaultContentType(true)
	}
	rc.SetBody(in.Body)
}

// holdSpec is the stream a Grip-Hold: stream answer asks for: a multi-topic stream on its channels'
// topics (even one: its ids are cursors, so a function may change its channels between reconnects, and
// a fresh stream learns its first resumable id at once), resumed from the client's Last-Event-ID, with
// the answer's events first. Those carry the Last-Event-ID the client resumed from as their id, so they
// leave its place in the channels where it was; a fresh stream's carry none, and the id-only line that
// follows them (the stream's starting cursor) is where it resumes from.
func holdSpec(rc *fasthttp.RequestCtx, fnName string, in *grip.Instruct, lim grip.Limits) (transport.Spec, error) {
	topics := make([]string, len(in.Channels))
	for i, c := range in.Channels {
		topics[i] = c.Topic
	}
	max := lim.MaxChannels
	if max <= 0 {
		max = grip.DefaultLimits().MaxChannels
	}
	topics, err := fanout.NormalizeTopics(topics, max)
	if err != nil {
		return transport.Spec{}, fmt.Errorf("grip: channels: %w", err)
	}
	spec := transport.Spec{Kind: transport.Topic, Topics: topics, Meta: map[string]string{"grip": fnName}}
	spec.LastEventID = string(rc.Request.Header.Peek("Last-Event-ID"))
	if spec.LastEventID == "" {
		spec.LastEventID = string(rc.QueryArgs().Peek("lastEventId"))
	}
	if fanout.ValidateField("id", spec.LastEventID, fanout.MaxEventIDLen) != nil {
		spec.LastEventID = "" // not an id this edge gave: read live events
	}
	first := []byte("\n") // ends the retry hint the transport puts before it
	if len(in.Events) > 0 {
		first = first[:0]
		for _, ev := range in.Events {
			first = fanout.AppendFrame(first, spec.LastEventID, ev.Name, ev.Data)
		}
	}
	spec.First = first
	if ka := in.KeepAlive; ka != nil {
		// grip.ParseInstruct bounds the content (MaxKeepAliveBytes) and the timeout (1 s to a day: 0 is
		// taken as 1 s, more than a day is a 502); the transport rounds it to its heartbeat tick.
		spec.KeepAlive = &transport.KeepAlive{Content: ka.Content, Every: ka.Interval, Interval: ka.Mode == grip.KeepAliveInterval}
		if !spec.KeepAliveValid() {
			return transport.Spec{}, fmt.Errorf("grip: %w: %d bytes of keep-alive, more than the transport keeps (%d)",
				errKeepAliveTooLarge, len(ka.Content), transport.MaxKeepAliveBytes)
		}
	}
	return spec, nil
}

// errKeepAliveTooLarge: a Grip-Keep-Alive within grip.Limits (an operator raised MaxKeepAliveBytes) but
// over what the transport keeps per stream.
var errKeepAliveTooLarge = errors.New("keep-alive too large")
