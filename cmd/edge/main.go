// Command edge runs one sseedge node: SSE streams and the REST API on one port. Every setting is a flag
// and an environment variable (flag -heartbeat-interval is HEARTBEAT_INTERVAL); edge -h lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/edge"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
)

// config is every setting of a node, with its defaults.
type config struct {
	Port               int
	Host               string
	NodeID             string
	HeartbeatInterval  time.Duration
	HistorySize        int
	HistoryTTL         time.Duration
	HistoryMaxBytes    int64
	HistoryMaxStreams  int
	CORSOrigins        string
	DrainTimeout       time.Duration
	MaxQueueBytes      int
	MaxBodyBytes       int
	ReadBufferSize     int
	SendBuffer         int
	LogLevel           string
	AdminToken         string
	TokenSecret        string
	MetricsToken       string
	MaxStreamsPerIP    int
	MaxTopicsPerStream int
	SubscriptionTTL    time.Duration
	MaxAPIConnsPerIP   int
	FunctionAllow      string
	RedisAddr          string
	RedisPassword      string
	RedisUsername      string
	RedisTLSCAFile     string
	RedisTLSCertFile   string
	RedisTLSKeyFile    string
	RedisTLSServer     string
	RedisTLSInsecure   bool
	RedisSentinelAddr  string
	RedisSentinelName  string
	RedisSentinelPass  string
	RedisProbeEvery    time.Duration
	RedisProbeTimeout  time.Duration
	HealthInterval     time.Duration
	MCPSessionLease    time.Duration
	MCPSessionsPerIP   int
	GripKey            string
	RedisBusLinger     time.Duration
}

// secured reports whether both secrets are set: only then does the node listen beyond loopback by default.
func (c *config) secured() bool { return c.AdminToken != "" && c.TokenSecret != "" }

func (c *config) register(fs *flag.FlagSet) {
	fs.IntVar(&c.Port, "port", 8080, "the one public port (streams and API)")
	fs.StringVar(&c.Host, "host", "", "listen address (default 0.0.0.0 when ADMIN_TOKEN and TOKEN_SECRET are set, else 127.0.0.1)")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's name in the cluster (default: host name + random suffix)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", 15*time.Second, "heartbeat event period on every stream")
	fs.IntVar(&c.HistorySize, "history-size", 1000, "events kept per stream for resume")
	fs.DurationVar(&c.HistoryTTL, "history-ttl", 5*time.Minute, "how long an event stays resumable")
	fs.Int64Var(&c.HistoryMaxBytes, "history-max-bytes", fanout.DefaultHistoryMaxBytes, "bytes of in-memory history per node, oldest events evicted first (-1: no bound)")
	fs.IntVar(&c.HistoryMaxStreams, "history-max-streams", fanout.DefaultHistoryMaxStreams, "streams (topics at any level, client IDs) keeping in-memory history per node, oldest evicted first (-1: no bound)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "*", "comma-separated allowed origins for streams and API")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 10*time.Second, "how long shutdown waits for streams to drain")
	fs.IntVar(&c.MaxQueueBytes, "max-queue-bytes", 1<<20, "unsent bytes a stream may hold before it is cut off as a slow consumer")
	fs.IntVar(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest API request body")
	fs.IntVar(&c.ReadBufferSize, "read-buffer-size", edge.DefaultReadBufferSize, "initial input buffer of a connection, in bytes (a held stream keeps it; longer request heads still work)")
	fs.IntVar(&c.SendBuffer, "send-buffer", 128<<10, "SO_SNDBUF of stream sockets in bytes: bounds the kernel memory a stream that stops reading can pin (the kernel doubles it; 0: the kernel's autotuning, up to net.ipv4.tcp_wmem's maximum)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token for admin, publish and invoke calls (empty: open)")
	fs.StringVar(&c.TokenSecret, "token-secret", "", "HS256 secret of stream tokens (empty: streams open)")
	fs.StringVar(&c.MetricsToken, "metrics-token", "", "bearer token for GET /metrics (empty: open)")
	fs.StringVar(&c.RedisAddr, "redis-addr", "", "Redis address, or several comma-separated for Redis Cluster (empty: one node, state in memory)")
	fs.StringVar(&c.RedisPassword, "redis-password", "", "Redis password")
	fs.StringVar(&c.RedisUsername, "redis-username", "", "Redis ACL user (default: the user in a redis:// URL, else default)")
	fs.StringVar(&c.RedisTLSCAFile, "redis-tls-ca-file", "", "PEM CA bundle that verifies Redis's certificate (turns TLS on; default roots: the system's)")
	fs.StringVar(&c.RedisTLSCertFile, "redis-tls-cert-file", "", "client certificate for Redis mutual TLS (with -redis-tls-key-file)")
	fs.StringVar(&c.RedisTLSKeyFile, "redis-tls-key-file", "", "client key for Redis mutual TLS")
	fs.StringVar(&c.RedisTLSServer, "redis-tls-server-name", "", "name Redis's certificate must carry (default: the host dialed)")
	fs.BoolVar(&c.RedisTLSInsecure, "redis-tls-insecure", false, "do not verify Redis's certificate (logged as a warning; for tests only)")
	fs.StringVar(&c.RedisSentinelAddr, "redis-sentinel-addr", "", "comma-separated Sentinel addresses, instead of -redis-addr")
	fs.StringVar(&c.RedisSentinelName, "redis-sentinel-master", "", "the master set name the sentinels monitor")
	fs.StringVar(&c.RedisSentinelPass, "redis-sentinel-password", "", "password of the sentinels")
	fs.DurationVar(&c.RedisProbeEvery, "redis-probe-interval", redisengine.DefaultProbeInterval, "period of the bus liveness probe over each pub/sub partition")
	fs.DurationVar(&c.RedisProbeTimeout, "redis-probe-timeout", redisengine.DefaultProbeTimeout, "a probe not back within this marks the bus down (health 503) and renews its subscription")
	fs.DurationVar(&c.RedisBusLinger, "redis-bus-linger", redisengine.DefaultLinger, "how long a node stays subscribed to a root's bus channel after its last stream of the root leaves")
	fs.StringVar(&c.FunctionAllow, "function-allow", "", "hosts or CIDRs function endpoints may reach beyond the public internet (loopback is allowed while no secrets are set)")
	fs.DurationVar(&c.HealthInterval, "health-interval", 10*time.Second, "period of function health checks")
	fs.IntVar(&c.MCPSessionsPerIP, "mcp-max-sessions-per-ip", mcp.DefaultMaxSessionsPerSource, "in-memory MCP sessions one source address (an IPv6 /64) may hold; past it its own oldest unused session is evicted (0: no bound; set 0 behind a load balancer)")
	fs.DurationVar(&c.MCPSessionLease, "mcp-session-lease", mcp.DefaultSessionLease, "with Redis: how long an HTTP+SSE MCP session outlives a node that dies holding its stream (renewed every third of it)")
	fs.StringVar(&c.GripKey, "grip-key", "", "signs Grip-Sig on calls to GRIP functions and checks GRIP control JWTs (\"base64:…\" for bytes; empty: /grip/ off)")
	fs.IntVar(&c.MaxStreamsPerIP, "max-streams-per-ip", 1000, "streams one source address may hold (0: no bound; set 0 behind a load balancer)")
	fs.IntVar(&c.MaxTopicsPerStream, "max-topics-per-stream", fanout.MaxTopicsPerStream, "topics one stream may read with ?topic= (at most 64)")
	fs.DurationVar(&c.SubscriptionTTL, "subscription-ttl", node.DefaultSubscriptionTTL, "how long a client's server-side subscriptions are kept after their last change or the last open of one of its streams")
	fs.IntVar(&c.MaxAPIConnsPerIP, "max-api-conns-per-ip", 256, "API connections one source address may hold open, each a goroutine while idle (0: no bound; set 0 behind a load balancer or ingress)")
}

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "edge:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var cfg config
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	cfg.register(fs)
	if err := ff.Parse(fs, args, ff.WithEnvVars()); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if cfg.NodeID == "" {
		cfg.NodeID = defaultNodeID()
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
		if cfg.secured() {
			cfg.Host = "0.0.0.0"
		}
	}
	if cfg.AdminToken == "" {
		log.Warn("ADMIN_TOKEN is not set: admin, publish and invoke calls are open to whoever reaches this node")
	}
	if cfg.TokenSecret == "" {
		log.Warn("TOKEN_SECRET is not set: every stream is open to whoever reaches this node")
	}
	if n, err := raiseFileLimit(); err != nil {
		log.Warn("could not raise the open-file limit", "err", err)
	} else {
		log.Info("open-file limit", "soft", n)
	}
	// Netpoll reads these globals when it creates a connection; set them before the first one.
	if err := edge.ConfigureNetpoll(cfg.ReadBufferSize); err != nil {
		return err
	}

	shutdownTracing, err := metrics.SetupTracing(ctx, "sseedge", cfg.NodeID)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	if metrics.TracingEnabled() {
		log.Info("tracing on: exporting spans over OTLP")
	}
	reg := metrics.NewRegistry()
	m := metrics.New(reg)

	st, err := newState(&cfg, log, m)
	if err != nil {
		return err
	}
	defer st.close()
	fns, err := newFunctions(&cfg, log, m, st.store, st.sessions)
	if err != nil {
		return err
	}
	defer fns.close(context.WithoutCancel(ctx))

	origins := cors.New(splitList(cfg.CORSOrigins))
	n := node.New(node.Config{
		NodeID: cfg.NodeID,
		History: fanout.Config{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL, HistoryMaxBytes: cfg.HistoryMaxBytes,
			HistoryMaxStreams: cfg.HistoryMaxStreams, MaxFrameBytes: cfg.MaxQueueBytes}, // a frame the node accepts always fits an empty queue
		TopicEngine:   st.topics,
		ClientEngine:  st.clients,
		Directory:     st.directory,
		Subscriptions: st.subs,
		// A client's stored server-side subscriptions are bounded as its streams' topics are.
		MaxTopicsPerStream: cfg.MaxTopicsPerStream,
		SweepInterval:      cfg.HeartbeatInterval,
		StatusFunctions:    fns.status,
		Logger:             log,
		Metrics:            m,
	})
	defer n.Close()
	streamAuth := auth.NewStreamAuth([]byte(cfg.TokenSecret))
	guard := api.NewAuth(auth.NewAdminAuth(cfg.AdminToken), auth.NewAdminAuth(cfg.MetricsToken), streamAuth)
	r := api.NewRouter(log)
	srv, err := edge.New(edge.Config{
		Node:              n,
		Handler:           api.Handler(r, origins, m),
		HeartbeatInterval: cfg.HeartbeatInterval,
		MaxQueueBytes:     cfg.MaxQueueBytes,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		SendBufferBytes:   cfg.SendBuffer,
		CORS:              origins,
		Logger:            log,
		Metrics:           m,
		MaxStreamsPerIP:   cfg.MaxStreamsPerIP,
		MaxAPIConnsPerIP:  apiConnBound(cfg.MaxAPIConnsPerIP),
	})
	if err != nil {
		return err
	}
	gs, err := newGripSetup(&cfg)
	if err != nil {
		return err
	}
	gripPublish, err := gs.publishHandler(&cfg, n, log, m)
	if err != nil {
		return err
	}
	core := api.NewCore(api.CoreConfig{Node: n, Auth: guard, StreamAuth: streamAuth, CORS: origins, State: st.name(),
		Health: append([]api.HealthCheck{fns.health()}, st.health()...), Logger: log, Metrics: m, MaxTopicsPerStream: cfg.MaxTopicsPerStream,
		GripPublish: gripPublish})
	core.Register(r)
	core.Attach(srv)
	gw, err := fns.mount(r, guard, mcpStreams{Node: n, Server: srv, origins: origins}, &cfg, log)
	if err != nil {
		_ = srv.Shutdown(ctx)
		return fmt.Errorf("functions: %w", err)
	}
	if err := gs.mount(r, &cfg, fns, srv, log, m); err != nil {
		_ = srv.Shutdown(ctx)
		return fmt.Errorf("grip: %w", err)
	}
	srv.HandleStreams("/mcp/", gw.OpenStream) // MCP streams opened on a fresh connection skip fasthttp
	// Async results in flight reach their streams before the streams are told to go.
	srv.RegisterOnShutdown(fns.close)
	api.RegisterOps(r, guard, metrics.Handler(reg))
	st.start(ctx, log)
	n.Start()

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		_ = srv.Shutdown(ctx)
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("sseedge listening", "addr", ln.Addr().String(), "node_id", cfg.NodeID, "heartbeat", cfg.HeartbeatInterval)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain_timeout", cfg.DrainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil { // runs fns.close first
		log.Warn("shutdown", "err", err)
	}
	<-served
	log.Info("stopped")
	return nil
}

// mcpStreams is what the MCP gateway needs: the node publishes and ends client streams, the transport
// holds them, and the CORS policy vets browser origins.
type mcpStreams struct {
	*node.Node
	*edge.Server
	origins cors.Policy
}

func (s mcpStreams) OriginAllowed(origin string) bool { return s.origins.Allowed(origin) }

// raiseFileLimit lifts the soft open-file limit to the hard one: every held stream is a file.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "edge"
	}
	return host + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// apiConnBound maps the flag's 0 (no bound, as for streams) to edge.Config's negative.
func apiConnBound(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
