package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/mcp/mcpredis"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/node/subsredis"
	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/registry/redisstore"
)

// state is where a node keeps what it shares: in memory when it runs alone (no REDIS_ADDR), in Redis
// when it is one of many. Nothing else in the node knows which.
type state struct {
	store      registry.Store
	topics     fanout.Engine // nil in memory
	clients    fanout.Engine // nil in memory
	directory  node.Directory
	subs       node.SubscriptionStore // clients' server-side subscriptions
	sessions   mcp.SessionStore       // nil: the MCP gateway's own, in memory
	engine     *redisengine.Engine
	closeRedis func() // closes the Redis client; nil in memory
	m          *metrics.Metrics
}

func newState(cfg *config, log *slog.Logger, m *metrics.Metrics) (*state, error) {
	rc := cfg.redis()
	if !rc.Enabled() {
		return &state{store: &registry.MemoryStore{}, subs: node.NewMemorySubscriptions(cfg.SubscriptionTTL), m: m}, nil
	}
	// A node that cannot reach the Redis it was given exits rather than serve alone: in memory it
	// would split the cluster without anyone noticing. The log line says which setting to check.
	client, err := redisx.NewClient(rc, log)
	if err != nil {
		log.Error("redis: cannot connect at start; exiting", "redis", rc.Describe(), "err", err, "hint", redisx.Explain(err))
		return nil, fmt.Errorf("redis: %w", err)
	}
	// The bus's per-partition pub/sub connections come from a client with small buffers (16 KiB
	// instead of 0.5 MiB each way): one connection a partition, each idle most of the time.
	pubsub, err := redisx.NewPubSubClient(rc, log)
	if err != nil {
		client.Close()
		log.Error("redis: cannot connect at start; exiting", "redis", rc.Describe(), "err", err, "hint", redisx.Explain(err))
		return nil, fmt.Errorf("redis: %w", err)
	}
	eng := redisengine.New(client, redisengine.Config{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL, Logger: log, Metrics: m,
		ProbeInterval: cfg.RedisProbeEvery, ProbeTimeout: cfg.RedisProbeTimeout, Linger: cfg.RedisBusLinger, PubSub: pubsub})
	// The engine and the other parts share one instrumentation (internal/redisx): a span, a deadline
	// and an observation of every call. The engine applies it per call; the others share one view of
	// the client that does.
	shared := redisx.Instrumentation{Tracer: otel.Tracer(redisx.TracerName), Observer: m, Timeout: redisstore.DefaultTimeout}.Client(client)
	store := redisstore.New(shared, "sseedge", redisstore.WithOnCacheHit(func(hit bool) {
		if hit {
			m.RedisCacheHit()
		} else {
			m.RedisCacheMiss()
		}
	}))
	return &state{
		store:      store,
		topics:     eng.Namespace("t"),
		clients:    eng.Namespace("c"),
		directory:  redisstore.NewDirectory(shared, "sseedge"),
		subs:       subsredis.New(shared, "sseedge", cfg.SubscriptionTTL),
		sessions:   mcpredis.NewSessionStore(shared, "sseedge", mcp.DefaultSessionTTL, cfg.MCPSessionLease),
		engine:     eng,
		closeRedis: func() { pubsub.Close(); client.Close() },
		m:          m,
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
		return
	}
	log.Info("sharing state through redis")
}

// name is where the state lives, for GET /admin/health.
func (s *state) name() string {
	if s.engine == nil {
		return "memory"
	}
	return "redis"
}

// health reports the bus as the engine's liveness probe last saw it, for GET /admin/health: it costs
// Redis nothing, and it is down while Redis refuses writes or a subscription has gone quiet, which a
// PING would not show. Down makes the answer 503 (status redis_down) so a load balancer drains the node
// while it stays so. In memory there is nothing to report.
func (s *state) health() []api.HealthCheck {
	if s.engine == nil {
		return nil
	}
	return []api.HealthCheck{{Name: "redis", Check: func(context.Context) (any, bool) {
		bus := s.engine.Bus()
		redis := map[string]any{"status": "up", "since": bus.Since.UTC().Format(time.RFC3339)}
		if !bus.Up {
			redis["status"] = "down"
			redis["failed_partitions"] = bus.Failed
			if bus.Err != nil {
				redis["error"] = bus.Err.Error()
			}
		}
		return redis, bus.Up
	}}}
}

// redis is the node's Redis settings as the client factory takes them.
func (c *config) redis() redisx.Config {
	return redisx.Config{
		Addr: c.RedisAddr, Username: c.RedisUsername, Password: c.RedisPassword,
		TLSCAFile: c.RedisTLSCAFile, TLSCertFile: c.RedisTLSCertFile, TLSKeyFile: c.RedisTLSKeyFile,
		TLSServerName: c.RedisTLSServer, TLSInsecure: c.RedisTLSInsecure,
		SentinelAddr: c.RedisSentinelAddr, SentinelMaster: c.RedisSentinelName, SentinelPassword: c.RedisSentinelPass,
	}
}

func (s *state) close() {
	if s.engine != nil {
		s.engine.Close()
	}
	if s.closeRedis != nil {
		s.closeRedis()
	}
}
