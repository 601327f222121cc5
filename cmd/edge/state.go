package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/edge"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// state is where a node keeps what it shares: in memory when it runs alone (no REDIS_ADDR), in Redis
// when it is one of many. Nothing else in the node knows which.
type state struct {
	store     registry.Store
	topics    fanout.Engine // nil in memory
	clients   fanout.Engine // nil in memory
	directory edge.Directory
	sessions  mcp.SessionStore // nil: the MCP gateway's own, in memory
	engine    *redisengine.Engine
	client    rueidis.Client
	m         *metrics.Metrics
}

func newState(cfg *config, log *slog.Logger, m *metrics.Metrics) (*state, error) {
	if cfg.RedisAddr == "" {
		return &state{store: &registry.MemoryStore{}, m: m}, nil
	}
	client, err := registry.NewRedisClient(splitList(cfg.RedisAddr), cfg.RedisPassword)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	eng := redisengine.New(client, redisengine.Config{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL, Logger: log, Metrics: m})
	// The engine times and traces its own calls; the other parts share one instrumented view.
	shared := registry.Instrument(client, m)
	store := registry.NewRedisStore(shared, "sseedge", registry.WithOnCacheHit(func(hit bool) {
		if hit {
			m.RedisCacheHit()
		} else {
			m.RedisCacheMiss()
		}
	}))
	return &state{
		store:     store,
		topics:    eng.Namespace("t"),
		clients:   eng.Namespace("c"),
		directory: registry.NewRedisDirectory(shared, "sseedge"),
		sessions:  mcp.NewRedisSessionStore(shared, "sseedge", mcp.DefaultSessionTTL, cfg.MCPSessionLease),
		engine:    eng,
		client:    client,
		m:         m,
	}, nil
}

// start subscribes to the shared events once the hubs exist. A Redis that is away at start does not stop
// the node: its streams are held, and the subscriptions renew themselves when Redis comes back.
func (s *state) start(ctx context.Context, log *slog.Logger) {
	if s.engine == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.engine.Start(ctx); err != nil {
		log.Error("redis not reachable at start; serving held streams and retrying", "err", err)
		s.m.SetRedisUp(false)
		return
	}
	s.m.SetRedisUp(true)
	log.Info("sharing state through redis")
}

// health reports the state's reachability for GET /admin/health.
func (s *state) health(ctx context.Context) map[string]any {
	if s.engine == nil {
		return map[string]any{"state": "memory"}
	}
	status := "up"
	err := s.engine.Ping(ctx)
	if err != nil {
		status = "down"
	}
	s.m.SetRedisUp(err == nil)
	out := map[string]any{"state": "redis", "redis": map[string]any{"status": status}}
	if err != nil {
		out["redis"].(map[string]any)["error"] = err.Error()
	}
	return out
}

func (s *state) close() {
	if s.engine != nil {
		s.engine.Close()
	}
	if s.client != nil {
		s.client.Close()
	}
}
