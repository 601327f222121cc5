// Package mcp exposes functions registered with "mcp": true as remote MCP servers, over both MCP HTTP
// transports:
//
//   - HTTP+SSE (protocol 2024-11-05): GET /mcp/{fn}/sse opens a session and holds its event stream,
//     whose first event, "endpoint", names POST /mcp/{fn}/messages?sessionId=<id>. Each POST is
//     answered 202 at once; the function's reply reaches the stream as a "message" event.
//   - Streamable HTTP (2025-03-26 and later): POST /mcp/{fn} carries one message and gets the reply in
//     its answer (initialize opens the session and returns Mcp-Session-Id); GET /mcp/{fn} holds the
//     session's listening stream (resumable with Last-Event-ID); DELETE /mcp/{fn} ends the session.
//
// The edge holds sessions and streams; the function is stateless and sees one JSON-RPC message per
// call: the client's JSON unchanged as the body, with X-Mcp-Session-Id, X-Mcp-Transport,
// Mcp-Protocol-Version, X-Client-Id (the session's stream: mcp:<sessionId>, for events pushed through
// POST /clients/{id}/events) and the client's Authorization header. It answers 200 with the JSON-RPC
// response to a request, and 202 to a notification or a response. Calls go through the invoker
// (breakers, retries, deadlines, traces); tools/call is tried once unless the function is idempotent.
// A request whose call fails is answered with a JSON-RPC error -32603 carrying its id: never silence.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/sseedge/sseedge/internal/bounded"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/transport"
)

// Defaults of Config.
const (
	DefaultMaxPending           = 1024
	DefaultMaxSessions          = 100_000
	DefaultMaxSessionsPerSource = 1000
)

// Header names of the MCP transports and of the calls to functions.
const (
	HeaderSessionID       = "Mcp-Session-Id"
	HeaderProtocolVersion = "Mcp-Protocol-Version"
	HeaderFnSessionID     = "X-Mcp-Session-Id"
	HeaderFnTransport     = "X-Mcp-Transport"
)

// Protocol versions assumed when a client sends no Mcp-Protocol-Version: the spec's default for
// Streamable HTTP, and the version of the HTTP+SSE transport.
const (
	defaultStreamableVersion = "2025-03-26"
	defaultSSEVersion        = "2024-11-05"
)

// Streams is what the gateway needs of the node and the transport that holds its streams.
type Streams interface {
	// HoldStream answers ctx with the event stream spec describes.
	HoldStream(ctx *fasthttp.RequestCtx, spec transport.Spec)
	// PublishToClient sends an event to the stream held under key, wherever it is held.
	PublishToClient(ctx context.Context, key, event string, data []byte) (string, error)
	// OriginAllowed reports whether requests from a browser origin are allowed.
	OriginAllowed(origin string) bool
	// EndClientStreams ends the streams held under key, wherever they are held.
	EndClientStreams(ctx context.Context, key string) error
}

// Config configures a Gateway. Functions, Invoker and Streams are required.
type Config struct {
	Functions registry.Store
	Invoker   *invoker.Invoker
	Streams   Streams
	// Sessions defaults to a MemorySessionStore of DefaultMaxSessions; give every node the same shared
	// store to let any node serve any request.
	Sessions SessionStore
	// MaxSessionsPerSource bounds the sessions of one source address (an IPv6 /64) in the default
	// store: default DefaultMaxSessionsPerSource, negative for no bound (behind a load balancer every
	// session comes from its address). New also has a *MemorySessionStore given in Sessions report its
	// evictions here, unless it has an OnEvict of its own.
	MaxSessionsPerSource int
	// Metrics counts evicted sessions; nil counts nothing.
	Metrics *metrics.Metrics
	// MaxPending bounds HTTP+SSE messages being forwarded in the background; over it a POST gets 503.
	// Default 1024.
	MaxPending int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Propagator reads the client's trace context. Default: W3C trace context plus otel's global one.
	Propagator propagation.TextMapPropagator
}

// Gateway serves the MCP routes. Create it with New, mount it with Register, stop it with Close.
type Gateway struct {
	fns      registry.Store
	inv      *invoker.Invoker
	streams  Streams
	sessions SessionStore
	log      *slog.Logger
	prop     propagation.TextMapPropagator
	metrics  *metrics.Metrics

	pending *bounded.Group
	leases  *leases // nil unless the session store is a SessionRenewer
}

// New checks cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Functions == nil:
		return nil, errors.New("mcp: Config.Functions is required")
	case cfg.Invoker == nil:
		return nil, errors.New("mcp: Config.Invoker is required")
	case cfg.Streams == nil:
		return nil, errors.New("mcp: Config.Streams is required")
	}
	if cfg.Sessions == nil {
		per := cfg.MaxSessionsPerSource
		switch {
		case per == 0:
			per = DefaultMaxSessionsPerSource
		case per < 0:
			per = 0
		}
		cfg.Sessions = &MemorySessionStore{Max: DefaultMaxSessions, MaxPerSource: per}
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Propagator == nil {
		cfg.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, otel.GetTextMapPropagator())
	}
	g := &Gateway{
		fns: cfg.Functions, inv: cfg.Invoker, streams: cfg.Streams, sessions: cfg.Sessions,
		log: cfg.Logger.With("component", "mcp"), prop: cfg.Propagator, metrics: cfg.Metrics,
		pending: bounded.New(cfg.MaxPending),
	}
	if m, ok := cfg.Sessions.(*MemorySessionStore); ok && m.OnEvict == nil {
		m.OnEvict = g.evicted
	}
	if r, ok := cfg.Sessions.(SessionRenewer); ok && r.Lease() > 0 {
		g.leases = newLeases(r, g.log)
	}
	return g, nil
}

// evicted ends the stream of a session the store evicted to make room, so its client reconnects at once
// instead of holding a stream nobody can reach (its POSTs would get 404), and counts it.
func (g *Gateway) evicted(ctx context.Context, s Session, r metrics.SessionEviction) {
	g.metrics.MCPSessionEvicted(r)
	g.log.Debug("session evicted to make room", "session", s.ID, "source", s.Source, "reason", r.String())
	if err := g.streams.EndClientStreams(ctx, StreamKey(s.ID)); err != nil {
		g.log.Warn("ending an evicted session's stream failed", "session", s.ID, "err", err)
	}
}

// Register mounts the MCP routes on r. They are public: authorization is the function's business
// (it receives the client's Authorization header).
func (g *Gateway) Register(r *router.Router) {
	r.GET("/mcp/{fn}/sse", g.checkOrigin(g.openSSE))
	r.POST("/mcp/{fn}/messages", g.checkOrigin(g.postSSE))
	r.POST("/mcp/{fn}", g.checkOrigin(g.postStreamable))
	r.GET("/mcp/{fn}", g.checkOrigin(g.getStreamable))
	r.DELETE("/mcp/{fn}", g.checkOrigin(g.deleteStreamable))
	for _, p := range []string{"/mcp/{fn}/sse", "/mcp/{fn}/messages", "/mcp/{fn}"} {
		r.OPTIONS(p, preflight)
	}
}

// Close refuses new HTTP+SSE messages and waits for those being forwarded, replies published. If ctx
// ends first it cancels them (each still publishes its -32603 error once its attempt in progress ends)
// and returns ctx's error. It also stops renewing session leases: the sessions of streams still held
// then end with their streams, or a lease later.
func (g *Gateway) Close(ctx context.Context) error {
	g.leases.close()
	return g.pending.Close(ctx)
}

// StreamKey is the client-stream key of a session: replies (HTTP+SSE) and server-initiated messages
// (both transports) are published there, by the gateway or by anyone with the admin token through
// POST /clients/mcp:<sessionId>/events.
func StreamKey(sessionID string) string { return "mcp:" + sessionID }

// context is parent with the client's trace context. Not the RequestCtx as parent: its Done channel is
// not a context package one, so every timeout a store or the invoker derived from it would cost a
// goroutine.
func (g *Gateway) context(parent context.Context, rc *fasthttp.RequestCtx) context.Context {
	return g.prop.Extract(parent, metrics.RequestHeaderCarrier{Header: &rc.Request.Header})
}

// checkOrigin refuses requests whose Origin the edge does not allow, as the MCP spec asks of servers to
// defeat DNS rebinding (a page on an attacker's name that resolves to a private edge).
func (g *Gateway) checkOrigin(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		if origin := string(rc.Request.Header.Peek("Origin")); origin != "" && !g.streams.OriginAllowed(origin) {
			fail(rc, fasthttp.StatusForbidden, &rpcError{code: CodeBadRequest, message: "Forbidden: origin not allowed"})
			return
		}
		next(rc)
	}
}

// preflight answers CORS preflights of the MCP routes; the edge adds the allowed origin.
func preflight(rc *fasthttp.RequestCtx) {
	h := &rc.Response.Header
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, Mcp-Protocol-Version")
	h.Set("Access-Control-Expose-Headers", HeaderSessionID)
	h.Set("Access-Control-Max-Age", "600")
	rc.SetStatusCode(fasthttp.StatusNoContent)
}

// fail answers status with a JSON-RPC error body.
func fail(rc *fasthttp.RequestCtx, status int, e *rpcError) {
	rc.SetStatusCode(status)
	rc.SetContentType("application/json")
	rc.SetBody(e.encode())
}

// function finds the MCP function named in the path, answering 404 or 503 itself when it cannot.
func (g *Gateway) function(ctx context.Context, rc *fasthttp.RequestCtx) (registry.Function, bool) {
	rc.Response.Header.Set("Access-Control-Expose-Headers", HeaderSessionID)
	name, _ := rc.UserValue("fn").(string)
	fn, refusal := g.lookup(ctx, name)
	if refusal != nil {
		answer(rc, refusal)
		return fn, false
	}
	return fn, true
}

// lookup finds the MCP function called name, or the refusal to answer (404, or 503 when the registry
// cannot be read).
func (g *Gateway) lookup(ctx context.Context, name string) (registry.Function, *transport.Refusal) {
	fn, err := g.fns.Get(ctx, name)
	switch {
	case errors.Is(err, registry.ErrNotFound) || err == nil && !fn.MCP:
		return fn, refuse(fasthttp.StatusNotFound, &rpcError{code: CodeBadRequest, message: fmt.Sprintf("no MCP function named %q", name)})
	case err != nil:
		g.log.Warn("function registry unavailable", "function", name, "err", err)
		return fn, refuse(fasthttp.StatusServiceUnavailable, &rpcError{code: CodeInternalError, message: "function registry unavailable"})
	}
	return fn, nil
}

func refuse(status int, e *rpcError) *transport.Refusal {
	return &transport.Refusal{Status: status, ContentType: "application/json", Body: e.encode()}
}

func answer(rc *fasthttp.RequestCtx, r *transport.Refusal) {
	rc.SetStatusCode(r.Status)
	rc.SetContentType(r.ContentType)
	rc.SetBody(r.Body)
}

// session finds the session id of fn on transport t, answering 400, 404 or 503 itself when it cannot.
func (g *Gateway) session(ctx context.Context, rc *fasthttp.RequestCtx, fn registry.Function, id string, t Transport) (Session, bool) {
	s, refusal := g.findSession(ctx, fn, id, t)
	if refusal != nil {
		answer(rc, refusal)
		return s, false
	}
	return s, true
}

// findSession finds the session id of fn on transport t, or the refusal to answer: 400 without an ID,
// 404 for an unknown or ended one, 503 when the store cannot be read.
func (g *Gateway) findSession(ctx context.Context, fn registry.Function, id string, t Transport) (Session, *transport.Refusal) {
	if id == "" {
		what := HeaderSessionID + " header"
		if t == TransportSSE {
			what = "sessionId query parameter"
		}
		return Session{}, refuse(fasthttp.StatusBadRequest, &rpcError{code: CodeBadRequest, message: "Bad Request: the " + what + " is required"})
	}
	s, err := g.sessions.Get(ctx, id)
	if err == nil && (s.Function != fn.Name || s.Transport != t) {
		err = ErrSessionNotFound
	}
	switch {
	case errors.Is(err, ErrSessionNotFound):
		return s, refuse(fasthttp.StatusNotFound, &rpcError{code: CodeSessionNotFound, message: "Session not found"})
	case err != nil:
		g.log.Warn("session store unavailable", "err", err)
		return s, refuse(fasthttp.StatusServiceUnavailable, &rpcError{code: CodeInternalError, message: "session store unavailable"})
	}
	return s, nil
}
