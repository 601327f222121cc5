// Package api is the HTTP API of a node over fasthttp. Core serves the node's own endpoints (streams,
// publishing, token refreshes, health, connections, the status page); API serves functions: registering
// them (/admin/functions) and invoking them (/invoke/{name}), synchronously in the response or
// asynchronously with the result delivered to a client's stream as a function_response event. Auth is
// applied where each route is registered (Auth), and Handler is the chain every request goes through.
package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/sseedge/sseedge/internal/bounded"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxAsync        = 1024
	DefaultMaxTimeout      = 15 * time.Minute
	DefaultDeliverTimeout  = 10 * time.Second
	FunctionResponseEvent  = "function_response"
	invocationIDHeader     = "X-Invocation-Id"
	invocationAttemptsHead = "X-Invocation-Attempts"
)

// DeliverFunc puts one event on a client's stream, wherever the client is connected.
type DeliverFunc func(ctx context.Context, clientID string, event string, data []byte) error

// Config configures an API. Store and Invoker are required; Deliver is required for async invokes.
type Config struct {
	Store   registry.Store
	Invoker *invoker.Invoker
	Deliver DeliverFunc
	// Subscribe, when set, applies the "subscribe" and "unsubscribe" lists of an async function's JSON
	// answer to the client's streams (subscribe.go); nil ignores them.
	Subscribe SubscribeFunc
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int
	// MaxAsync bounds async invocations in flight; over it, 429 too_many_invocations. Default 1024.
	MaxAsync int
	// MaxTimeout bounds the "timeout" a caller may ask for in /invoke. Default 15m.
	MaxTimeout time.Duration
	// DeliverTimeout bounds one Deliver call. Default 10s.
	DeliverTimeout time.Duration
	// CheckEndpoint, when set, vets every endpoint URL of a function at registration (the network
	// guard); a refusal answers 400 endpoint_refused.
	CheckEndpoint func(ctx context.Context, rawURL string) error
	// Auth guards every route with the admin token.
	Auth Auth
	// Propagator reads the caller's trace context from request headers. Default: W3C trace
	// context plus otel's global propagator.
	Propagator propagation.TextMapPropagator
}

// API holds the function handlers. Create it with New, mount it with Register, stop it with Close.
type API struct {
	store         registry.Store
	inv           *invoker.Invoker
	deliver       DeliverFunc
	subscribe     SubscribeFunc
	log           *slog.Logger
	prop          propagation.TextMapPropagator
	maxBody       int
	maxTO         time.Duration
	deliverT      time.Duration
	auth          Auth
	checkEndpoint func(ctx context.Context, rawURL string) error

	// async invocations: a slot per invocation in flight, a context they all derive from (canceled
	// when Close runs out of patience), and a WaitGroup that Close waits on.
	async *bounded.Group
}

// New checks cfg, fills its defaults and returns the API.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: Config.Store is required")
	}
	if cfg.Invoker == nil {
		return nil, errors.New("api: Config.Invoker is required")
	}
	if cfg.Deliver == nil {
		return nil, errors.New("api: Config.Deliver is required (async results go through it)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxAsync <= 0 {
		cfg.MaxAsync = DefaultMaxAsync
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.DeliverTimeout <= 0 {
		cfg.DeliverTimeout = DefaultDeliverTimeout
	}
	if cfg.Propagator == nil {
		cfg.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, otel.GetTextMapPropagator())
	}
	return &API{
		store: cfg.Store, inv: cfg.Invoker, deliver: cfg.Deliver, subscribe: cfg.Subscribe, log: cfg.Logger, prop: cfg.Propagator,
		maxBody: cfg.MaxBodyBytes, maxTO: cfg.MaxTimeout, deliverT: cfg.DeliverTimeout, auth: cfg.Auth,
		checkEndpoint: cfg.CheckEndpoint,
		async:         bounded.New(cfg.MaxAsync),
	}, nil
}

// Register mounts the routes on r.
func (a *API) Register(r *router.Router) {
	handle := func(method, route string, h fasthttp.RequestHandler) {
		r.Handle(method, route, a.auth.Admin(h))
	}
	handle(fasthttp.MethodPost, "/admin/functions", a.createFunction)
	handle(fasthttp.MethodGet, "/admin/functions", a.listFunctions)
	handle(fasthttp.MethodGet, "/admin/functions/{name}", a.getFunction)
	handle(fasthttp.MethodDelete, "/admin/functions/{name}", a.deleteFunction)
	handle(fasthttp.MethodPost, "/invoke/{name}", a.invoke)
}

// Close refuses new async invocations and waits for those in flight, results delivered. If ctx ends
// first it cancels them (each still delivers its failure) and returns ctx's error.
func (a *API) Close(ctx context.Context) error { return a.async.Close(ctx) }
