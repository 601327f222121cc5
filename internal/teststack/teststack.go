// Package teststack wires one node for tests as cmd/edge does, minus functions: the node core, the
// netpoll transport and the HTTP API on one router. Its Config keeps every setting of the three in one
// struct, so a test says only what it changes.
package teststack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/edge"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/registry"
)

// Config is the settings of a node, its transport and its API.
type Config struct {
	NodeID             string
	HeartbeatInterval  time.Duration
	HeadTimeout        time.Duration
	MaxHeadBytes       int
	MaxBodyBytes       int
	MaxQueueBytes      int
	SendBufferBytes    int
	WriteTimeout       time.Duration
	Retry              time.Duration
	ShutdownRetryMax   time.Duration
	CORSOrigins        []string
	History            fanout.Config
	TopicEngine        fanout.Engine
	ClientEngine       fanout.Engine
	Directory          node.Directory
	DirectoryInterval  time.Duration
	Logger             *slog.Logger
	Metrics            *metrics.Metrics
	AdminAuth          auth.AdminAuth
	MetricsAuth        auth.AdminAuth
	StreamAuth         *auth.StreamAuth
	MaxStreamsPerIP    int
	MaxAPIConnsPerIP   int
	MaxTopicsPerStream int
	// Subscriptions keeps server-side subscriptions (node.Config.Subscriptions); nil: in memory.
	Subscriptions   node.SubscriptionStore
	Health          []api.HealthCheck
	StatusFunctions func(ctx context.Context) []node.StatusFunction
	// GripPublish serves GRIP publishes on POST /publish/ (api.GripPublish), authorized by
	// GripAuthorizer (nil: open).
	GripPublish    bool
	GripAuthorizer *grip.Authorizer
	// GripSigner, when set, mounts the GRIP route (api.Grip) for the functions of GripStore, called
	// through GripInvoker.
	GripSigner  *grip.Signer
	GripStore   registry.Store
	GripInvoker api.FunctionCaller
}

// Stack is one wired node; it serves like an *edge.Server.
type Stack struct {
	*edge.Server
	Node    *node.Node
	Core    *api.Core
	Auth    api.Auth
	router  *router.Router
	origins cors.Policy
}

// New wires a node; nothing runs until Serve.
func New(cfg Config) (*Stack, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	maxQueue := cfg.MaxQueueBytes
	if maxQueue <= 0 {
		maxQueue = 1 << 20
	}
	if cfg.History.MaxFrameBytes == 0 {
		cfg.History.MaxFrameBytes = maxQueue
	}
	sweep := cfg.HeartbeatInterval
	n := node.New(node.Config{NodeID: cfg.NodeID, History: cfg.History, TopicEngine: cfg.TopicEngine, ClientEngine: cfg.ClientEngine,
		Directory: cfg.Directory, DirectoryInterval: cfg.DirectoryInterval, SweepInterval: sweep, StatusFunctions: cfg.StatusFunctions,
		Subscriptions: cfg.Subscriptions, MaxTopicsPerStream: cfg.MaxTopicsPerStream, Logger: cfg.Logger, Metrics: cfg.Metrics})
	origins := cors.New(cfg.CORSOrigins)
	guard := api.NewAuth(cfg.AdminAuth, cfg.MetricsAuth, cfg.StreamAuth)
	r := api.NewRouter(cfg.Logger)
	r.SaveMatchedRoutePath = true
	srv, err := edge.New(edge.Config{Node: n, Handler: api.Handler(r, origins, cfg.Metrics), HeartbeatInterval: cfg.HeartbeatInterval,
		HeadTimeout: cfg.HeadTimeout, MaxHeadBytes: cfg.MaxHeadBytes, MaxBodyBytes: cfg.MaxBodyBytes, MaxQueueBytes: cfg.MaxQueueBytes,
		SendBufferBytes: cfg.SendBufferBytes, WriteTimeout: cfg.WriteTimeout, Retry: cfg.Retry, ShutdownRetryMax: cfg.ShutdownRetryMax,
		CORS: origins, Logger: cfg.Logger, Metrics: cfg.Metrics, MaxStreamsPerIP: cfg.MaxStreamsPerIP, MaxAPIConnsPerIP: cfg.MaxAPIConnsPerIP})
	if err != nil {
		return nil, err
	}
	var gripPublish fasthttp.RequestHandler
	if cfg.GripPublish {
		gp, err := api.NewGripPublish(api.GripPublishConfig{Node: n, Authorizer: cfg.GripAuthorizer, Logger: cfg.Logger, Metrics: cfg.Metrics})
		if err != nil {
			return nil, err
		}
		gripPublish = gp.Serve
	}
	core := api.NewCore(api.CoreConfig{Node: n, Auth: guard, StreamAuth: cfg.StreamAuth, CORS: origins, Health: cfg.Health,
		Logger: cfg.Logger, Metrics: cfg.Metrics, MaxTopicsPerStream: cfg.MaxTopicsPerStream, GripPublish: gripPublish})
	core.Register(r)
	core.Attach(srv)
	if cfg.GripSigner != nil {
		g, err := api.NewGrip(api.GripConfig{Store: cfg.GripStore, Invoker: cfg.GripInvoker, Holder: srv, Signer: cfg.GripSigner,
			Logger: cfg.Logger, Metrics: cfg.Metrics})
		if err != nil {
			return nil, err
		}
		g.Register(r)
	}
	api.RegisterOps(r, guard, metrics.Handler(metrics.NewRegistry()))
	return &Stack{Server: srv, Node: n, Core: core, Auth: guard, router: r, origins: origins}, nil
}

// Router is the API router; tests add routes to it before Serve.
func (s *Stack) Router() *router.Router { return s.router }

// Serve starts the node's loops and serves ln until Shutdown.
func (s *Stack) Serve(ln net.Listener) error {
	s.Node.Start()
	return s.Server.Serve(ln)
}

// Shutdown drains the transport, then stops the node's loops.
func (s *Stack) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	s.Node.Close()
	return err
}

// PublishToClient publishes to a client's stream through the node.
func (s *Stack) PublishToClient(ctx context.Context, clientID, event string, data []byte) (string, error) {
	return s.Node.PublishToClient(ctx, clientID, event, data)
}

// EndClientStreams ends a client's streams through the node.
func (s *Stack) EndClientStreams(ctx context.Context, clientID string) error {
	return s.Node.EndClientStreams(ctx, clientID)
}

// OriginAllowed reports whether the node's CORS policy allows origin (MCP's Streams contract).
func (s *Stack) OriginAllowed(origin string) bool { return s.origins.Allowed(origin) }

// WarmUp starts what a process starts once and keeps for its life (netpoll's pollers, fasthttp's
// server-date ticker and its default dialer's address cleaner) by serving one request on a stack and
// dialing it with fasthttp, so that the goroutine counts a test takes see only its own goroutines. A
// package's TestMain calls it before m.Run.
func WarmUp() error {
	s, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	status, _, err := fasthttp.GetTimeout(nil, "http://"+ln.Addr().String()+"/admin/health", 10*time.Second)
	if err == nil && status != fasthttp.StatusOK {
		err = fmt.Errorf("teststack: warm-up health answered %d", status)
	}
	if shutErr := s.Shutdown(context.Background()); err == nil {
		err = shutErr
	}
	<-served
	return err
}
