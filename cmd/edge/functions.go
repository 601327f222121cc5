package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/fasthttp/router"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/netguard"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/registry"
)

// functions is the function registry, the invoker and their API, wired to one node.
type functions struct {
	store  registry.Store
	inv    *invoker.Invoker
	policy *netguard.Policy
	// sessions keeps MCP sessions where every node can read them (Redis), or nil for the gateway's own.
	sessions mcp.SessionStore
	metrics  *metrics.Metrics
	api      *api.API
	stop     context.CancelFunc
	once     sync.Once
}

// newFunctions builds the registry and the invoker. Function endpoints may reach only what the
// FUNCTION_ALLOW policy allows, checked again at every connect so DNS cannot be rebound around it.
func newFunctions(cfg *config, log *slog.Logger, m *metrics.Metrics, store registry.Store, sessions mcp.SessionStore) (*functions, error) {
	policy, err := netguard.ParsePolicy(cfg.FunctionAllow, !cfg.secured())
	if err != nil {
		return nil, fmt.Errorf("FUNCTION_ALLOW: %w", err)
	}
	log.Info("function endpoints", "policy", policy.String())
	return &functions{
		store:    store,
		inv:      invoker.New(invoker.Config{DialTimeout: policy.DialTimeout, Metrics: m}),
		policy:   policy,
		sessions: sessions,
		metrics:  m,
	}, nil
}

// mount adds the function and MCP routes to r, each behind the admin token where it needs one, with
// async results and MCP replies published through streams. It starts the periodic health checks.
func (f *functions) mount(r *router.Router, auth api.Auth, streams mcp.Streams, cfg *config, log *slog.Logger) (*mcp.Gateway, error) {
	a, err := api.New(api.Config{
		Store:   f.store,
		Invoker: f.inv,
		Deliver: func(ctx context.Context, clientID, event string, data []byte) error {
			_, err := streams.PublishToClient(ctx, clientID, event, data)
			return err
		},
		Subscribe:     subscribeFunc(streams),
		Logger:        log,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		CheckEndpoint: f.policy.CheckURL,
		Auth:          auth,
	})
	if err != nil {
		return nil, err
	}
	a.Register(r)
	f.api = a
	// MCP: functions registered with "mcp": true are MCP servers at /mcp/{name} (Streamable HTTP) and
	// /mcp/{name}/sse (HTTP+SSE). Replies in flight are published before the streams are told to go.
	perSource := cfg.MCPSessionsPerIP
	if perSource == 0 {
		perSource = -1 // no bound
	}
	gw, err := mcp.New(mcp.Config{Functions: f.store, Invoker: f.inv, Streams: streams, Sessions: f.sessions, Logger: log,
		MaxSessionsPerSource: perSource, Metrics: f.metrics})
	if err != nil {
		return nil, err
	}
	gw.Register(r)
	ctx, stop := context.WithCancel(context.Background())
	f.stop = func() {
		stop()
		gctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
		defer cancel()
		_ = gw.Close(gctx)
	}
	return gw, f.inv.StartHealthChecks(ctx, cfg.HealthInterval, f.store.List)
}

// health summarises function health for GET /admin/health. Load balancers probe it often, so it lists
// through the client-side cache. It never makes the node unfit: a function's trouble is its own.
func (f *functions) health() api.HealthCheck {
	return api.HealthCheck{Name: "functions", Check: func(ctx context.Context) (any, bool) {
		fns, err := f.store.ListCached(ctx)
		if err != nil {
			return map[string]any{"error": err.Error()}, true
		}
		unhealthy := []string{}
		for _, fn := range fns {
			if !f.inv.HealthFor(fn).Healthy {
				unhealthy = append(unhealthy, fn.Name)
			}
		}
		return map[string]any{"registered": len(fns), "unhealthy": unhealthy}, true
	}}
}

// status lists functions with their breakers and counts for the status page (through the cache too).
func (f *functions) status(ctx context.Context) []node.StatusFunction {
	fns, err := f.store.ListCached(ctx)
	if err != nil {
		return nil
	}
	rows := make([]node.StatusFunction, 0, len(fns))
	for _, fn := range fns {
		h := f.inv.HealthFor(fn)
		row := node.StatusFunction{Name: fn.Name, Breaker: "closed", Invocations: h.Invocations, Failures: h.Failures}
		for _, ep := range h.Endpoints {
			if ep.BreakerState == "open" || (ep.BreakerState == "half-open" && row.Breaker == "closed") {
				row.Breaker = ep.BreakerState
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// close finishes async invocations in flight (their results are delivered) and stops the invoker.
func (f *functions) close(ctx context.Context) {
	f.once.Do(func() {
		if f.api != nil {
			_ = f.api.Close(ctx)
		}
		if f.stop != nil {
			f.stop()
		}
		f.inv.Close()
	})
}

// subscribeFunc is how function answers change a client's topics: through the node, when streams has
// one (the node's ChangeClientSubscriptions).
func subscribeFunc(streams mcp.Streams) api.SubscribeFunc {
	n, ok := streams.(interface {
		ChangeClientSubscriptions(ctx context.Context, clientID string, add bool, topics []string) (int, error)
	})
	if !ok {
		return nil
	}
	return func(ctx context.Context, clientID string, add bool, topics []string) error {
		_, err := n.ChangeClientSubscriptions(ctx, clientID, add, topics)
		return err
	}
}
