// Package edge is the netpoll transport of a node: it holds Server-Sent Events connections on
// cloudwego/netpoll's epoll loop and hands every other request on the same port to fasthttp (the API, a
// fasthttp.RequestHandler it is given). A held stream costs a small struct and netpoll's per-connection
// state: no goroutine, timer or channel. Frames are queued by reference and written in batches by a few
// writer goroutines; heartbeats go out from one timer. What a stream reads is decided by openers
// (transport.Opener) and the node core (node.Node) delivers to it; edge knows no routes.
package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// Config configures a Server. Node is required; the zero value of every other field gives the defaults
// of DESIGN.md.
type Config struct {
	Node              *node.Node              // the node whose hubs the streams read
	Handler           fasthttp.RequestHandler // the HTTP API, for every request that is not a stream; nil: 404
	HeartbeatInterval time.Duration           // default 15s
	HeadTimeout       time.Duration           // a request head must arrive within this; default 10s
	MaxHeadBytes      int                     // default 8 KiB
	MaxBodyBytes      int                     // API request bodies; default 1 MiB
	MaxQueueBytes     int                     // unsent bytes a stream may hold before it is cut off; default 1 MiB
	SendBufferBytes   int                     // SO_SNDBUF of stream sockets: kernel memory per stream; 0 keeps the kernel's autotuning
	WriteTimeout      time.Duration           // a stalled stream with queued bytes is cut off after this; default 10s
	APIIdleTimeout    time.Duration           // keep-alive API connections; default 60s
	Retry             time.Duration           // the retry: hint of every stream; default 3s
	ShutdownRetryMax  time.Duration           // at shutdown, clients are told to come back within this, jittered; default 10s
	CORS              cors.Policy             // origins allowed to open streams; zero value: any
	Logger            *slog.Logger
	Metrics           *metrics.Metrics // nil records nothing
	MaxStreamsPerIP   int              // 0: no bound
	// MaxAPIConnsPerIP bounds the API connections one address holds open (each keeps a goroutine while
	// it idles between requests); over it, 429. Default 256; negative: no bound.
	MaxAPIConnsPerIP int
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatInterval, 15*time.Second)
	def(&c.HeadTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.APIIdleTimeout, 60*time.Second)
	def(&c.Retry, 3*time.Second)
	def(&c.ShutdownRetryMax, 10*time.Second)
	if c.MaxHeadBytes <= 0 {
		c.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 1 << 20
	}
	if c.MaxAPIConnsPerIP == 0 {
		c.MaxAPIConnsPerIP = 256
	}
	if c.Handler == nil {
		c.Handler = func(ctx *fasthttp.RequestCtx) {
			httpjson.WriteError(ctx, fasthttp.StatusNotFound, "not_found", "no route for "+string(ctx.Method())+" "+string(ctx.Path()))
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is the netpoll transport of one node: it accepts connections, reads request heads, holds
// streams (writers, heartbeats, the slow-consumer policy) and hands every other request to fasthttp.
// It knows nothing of what routes mean: openers (HandleStreams) decide what a stream reads.
type Server struct {
	cfg     Config
	log     *slog.Logger
	node    *node.Node
	wire    wire
	fast    *fasthttp.Server
	loop    netpoll.EventLoop
	runq    *runQueue
	conns   registry
	heads   headReaper
	tokens  tokenWatch
	openers openers // paths whose GET requests the transport reads itself; set before Serve
	perIP   ipLimiter
	apiIP   ipLimiter // API connections per address

	startOnce sync.Once
	draining  atomic.Bool
	drained   chan struct{} // signalled when draining and the last stream is gone
	stop      chan struct{}
	bg        sync.WaitGroup
	nextID    atomic.Uint64
	hooksMu   sync.Mutex
	hooks     []func(context.Context) // RegisterOnShutdown, run in order before streams are told to go
	shutOnce  sync.Once
	shutErr   error

	open            [transport.KindCount]atomic.Int64
	opened          atomic.Uint64
	heartbeatFrames atomic.Uint64 // heartbeat frames built: one per tick, whatever the stream count
	keepAlives      atomic.Uint64 // streams' own keep-alives queued (keepalive.go)
	slowConsumers   atomic.Uint64
	framesBytes     atomic.Uint64
	framesSent      atomic.Uint64
}

// New builds a server; nothing runs until Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Node == nil {
		return nil, errors.New("edge: Config.Node is required")
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		node:    cfg.Node,
		wire:    newWire(cfg),
		runq:    newRunQueue(),
		drained: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	s.conns.init()
	s.heads.init()
	s.perIP.max = cfg.MaxStreamsPerIP
	s.apiIP.max = cfg.MaxAPIConnsPerIP
	s.fast = &fasthttp.Server{
		Handler:                       cfg.Handler,
		ErrorHandler:                  s.wire.fastError,
		Name:                          "sseedge",
		ReadTimeout:                   cfg.HeadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.APIIdleTimeout,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		ReadBufferSize:                cfg.MaxHeadBytes,
		KeepHijackedConns:             true,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fastLogger{s.log},
	}
	loop, err := netpoll.NewEventLoop(s.onRequest,
		netpoll.WithOnConnect(s.onConnect),
		netpoll.WithReadTimeout(cfg.HeadTimeout),
		netpoll.WithWriteTimeout(cfg.WriteTimeout),
		netpoll.WithIdleTimeout(2*cfg.HeartbeatInterval+time.Minute),
	)
	if err != nil {
		return nil, fmt.Errorf("edge: event loop: %w", err)
	}
	s.loop = loop
	cfg.Node.AttachTransport(s)
	return s, nil
}

// Serve accepts connections on ln until Shutdown, starting the server's writers and its heartbeat timer
// on its first call.
func (s *Server) Serve(ln net.Listener) error {
	s.start()
	err := s.loop.Serve(ln)
	if err != nil && s.draining.Load() {
		return nil
	}
	return err
}

// start runs the writers and the timer, once; Shutdown waits for them.
func (s *Server) start() {
	s.startOnce.Do(func() {
		workers := max(2, runtime.GOMAXPROCS(0))
		for range workers {
			s.bg.Go(func() { (&writer{srv: s}).run(s.runq) })
		}
		s.bg.Go(s.tick)
	})
}

// RegisterOnShutdown adds a hook that Shutdown runs, in the order added, before it tells streams to go:
// work that still delivers to streams (async results in flight) finishes first. Hooks get Shutdown's ctx.
func (s *Server) RegisterOnShutdown(hook func(ctx context.Context)) {
	s.hooksMu.Lock()
	s.hooks = append(s.hooks, hook)
	s.hooksMu.Unlock()
}

// Shutdown stops accepting new work, runs the shutdown hooks, tells every stream to come back later (a
// jittered retry: so a fleet does not reconnect at once), closes streams once that is written, finishes
// API requests in flight, and stops the server's goroutines. It returns ctx's error if the drain did not
// finish in time; everything is closed either way. Later calls wait for the first and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.start() // so that the writers drain the goodbyes even if Serve never ran
	s.hooksMu.Lock()
	hooks := s.hooks
	s.hooksMu.Unlock()
	for _, hook := range hooks {
		hook(ctx)
	}
	s.draining.Store(true)
	// Walk a snapshot: closing a stream runs its cleanup, which takes the registry's locks.
	for _, st := range s.conns.snapshot() {
		st.sendLast(s.wire.goodbye(st.held))
	}
	var drainErr error
	if s.conns.len() > 0 {
		select {
		case <-s.drained:
		case <-ctx.Done():
			drainErr = fmt.Errorf("edge: drain: %w", ctx.Err())
		}
	}
	if err := s.fast.ShutdownWithContext(ctx); err != nil && drainErr == nil {
		drainErr = fmt.Errorf("edge: api shutdown: %w", err)
	}
	close(s.stop)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.loop.Shutdown(closeCtx) // closes the listener and whatever connection is left
	for _, st := range s.conns.snapshot() {
		st.close(reasonShutdown)
	}
	s.heads.closeAll()
	s.runq.close()
	s.bg.Wait()
	return drainErr
}

// connState is what the edge knows of a connection before and after its first request head. It is also
// the context netpoll keeps for the connection (one allocation instead of a context.WithValue and a
// value: a held stream keeps it for its whole life).
type connState struct {
	context.Context
	mode     atomic.Int32
	deadline time.Time // the head must be complete by then
}

const (
	modeHead   = iota // waiting for the first request head
	modeAPI           // served by fasthttp
	modeStream        // a held stream; input is discarded
)

func (s *Server) onConnect(ctx context.Context, conn netpoll.Connection) context.Context {
	if s.draining.Load() {
		conn.Close()
		return ctx
	}
	st := &connState{Context: ctx, deadline: time.Now().Add(s.cfg.HeadTimeout)}
	s.heads.add(conn, st.deadline)
	return st
}

// onRequest runs when a connection has input and no onRequest is running for it. The first request
// decides the connection's fate: a GET on an opener's path is parsed here and held; anything else goes
// to fasthttp once its head is complete. It never waits for input: what has arrived of a head is kept
// (headReaper) and the handler returns, to be called again when more comes, so a client that sends its
// head slowly (or never finishes it) holds no goroutine; the reaper closes it at the head deadline.
func (s *Server) onRequest(ctx context.Context, conn netpoll.Connection) error {
	st, _ := ctx.(*connState)
	r := conn.Reader()
	if st == nil || st.mode.Load() == modeStream {
		_ = r.Skip(r.Len()) // a stream client has nothing more to say; netpoll re-calls us until input is consumed
		return r.Release()
	}
	in, err := r.Peek(r.Len())
	if err != nil {
		return s.dropHead(conn, err)
	}
	buf, kept := in, s.heads.partial(conn)
	if len(kept) > 0 {
		buf = append(kept[:len(kept):len(kept)], in...)
	}
	// consumed takes the input off netpoll's buffer once buf holds a copy of it.
	consumed := func() {
		_ = r.Skip(len(in))
		_ = r.Release()
	}
	// later keeps what arrived until more does.
	later := func() error {
		if time.Now().After(st.deadline) {
			return s.dropHead(conn, errors.New("request head timeout"))
		}
		if len(kept) == 0 {
			buf = bytes.Clone(in) // in is netpoll's buffer
		}
		consumed()
		if !s.heads.keep(conn, buf) { // reaped meanwhile
			conn.Close()
		}
		return nil
	}
	if !s.openers.match(buf) {
		if len(buf) < s.openers.longest && bytes.IndexByte(buf, '\n') < 0 {
			return later() // too short to tell
		}
		end := headEnd(buf)
		if end < 0 && len(buf) < s.cfg.MaxHeadBytes {
			return later() // fasthttp gets a whole head, so it never waits for one
		}
		if end > 0 && bareLF(buf[:end]) {
			s.heads.remove(conn)
			consumed()
			s.wire.reject(conn, "", &apiError{status: fasthttp.StatusBadRequest, code: "bad_request", msg: errBareLF.Error()})
			return nil
		}
		var prefix []byte
		if len(kept) > 0 {
			prefix = buf
			consumed()
		}
		s.serveAPI(conn, st, prefix)
		return nil
	}
	head, _, err := parseHead(buf, s.cfg.MaxHeadBytes)
	if errors.Is(err, errHeadIncomplete) {
		return later()
	}
	s.heads.remove(conn)
	if err != nil {
		e := &apiError{status: fasthttp.StatusBadRequest, code: "bad_request", msg: err.Error()}
		if errors.Is(err, errHeadTooLarge) {
			e.status, e.code = fasthttp.StatusRequestHeaderFieldsTooLarge, "head_too_large"
		}
		s.wire.reject(conn, "", e)
		return nil
	}
	consumed() // the head, and anything after it, which a stream client has no business sending
	st.mode.Store(modeStream)
	origin := head.get("Origin")
	if head.path, err = transport.CanonicalPath(head.path); err != nil {
		s.wire.reject(conn, origin, &apiError{status: fasthttp.StatusBadRequest, code: "bad_path", msg: err.Error()})
		return nil
	}
	open := s.openers.find(head.path)
	if open == nil { // the raw path matched a prefix its canonical form does not
		s.wire.reject(conn, origin, &apiError{status: fasthttp.StatusNotFound, code: "not_found", msg: "no such stream"})
		return nil
	}
	if origin != "" && !s.cfg.CORS.Allowed(origin) {
		s.wire.reject(conn, origin, &apiError{fasthttp.StatusForbidden, "origin_not_allowed", "origin not allowed"})
		return nil
	}
	spec, refusal := open(context.Background(), transport.Request{Path: head.path, RawQuery: head.rawQuery, Header: head.get, Remote: remoteIP(conn)})
	if refusal != nil {
		s.cfg.Metrics.RequestRejected(metrics.RejectReasonOf(refusal.Status))
		s.wire.write(conn, origin, refusal.Status, refusal.ContentType, refusal.Body)
		return nil
	}
	if !spec.KeepAliveValid() {
		s.cfg.Metrics.RequestRejected(metrics.RejectBadRequest)
		s.log.Warn("stream refused: a keep-alive the transport cannot honour", "path", head.path)
		refused(spec)
		s.wire.reject(conn, origin, &apiError{fasthttp.StatusInternalServerError, "bad_keep_alive", "the stream's keep-alive cannot be honoured"})
		return nil
	}
	s.openStream(conn, origin, spec)
	return nil
}

func (s *Server) dropHead(conn netpoll.Connection, err error) error {
	s.heads.remove(conn)
	s.cfg.Metrics.RequestRejected(metrics.RejectBadRequest)
	s.log.Debug("closing connection without a complete request head", "remote", conn.RemoteAddr(), "err", err)
	conn.Close()
	return nil
}

// apiConn is a connection served by fasthttp; a stream request on it is taken back by hijacking.
type apiConn struct {
	netpoll.Connection
	state  *connState
	prefix []byte // input the edge read while the head arrived in parts; fasthttp reads it first
}

// Read returns the input the edge already took off the connection, then reads the connection.
func (c *apiConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Connection.Read(p)
}

// serveAPI hands the connection to fasthttp for good; prefix is input already taken off it.
func (s *Server) serveAPI(conn netpoll.Connection, st *connState, prefix []byte) {
	s.heads.remove(conn)
	st.mode.Store(modeAPI)
	ip := remoteIP(conn)
	if !s.apiIP.acquire(ip) {
		s.wire.reject(conn, "", &apiError{fasthttp.StatusTooManyRequests, "too_many_connections", "too many API connections from this address"})
		return
	}
	defer s.apiIP.release(ip)
	_ = conn.SetReadTimeout(0) // fasthttp sets its own deadlines
	if err := s.fast.ServeConn(&apiConn{Connection: conn, state: st, prefix: prefix}); err != nil {
		s.log.Debug("api connection ended", "remote", conn.RemoteAddr(), "err", redactHead(err.Error()))
	}
}

// fastLogger routes fasthttp's log lines to slog.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Debug(redactHead(fmt.Sprintf(format, args...)))
}
