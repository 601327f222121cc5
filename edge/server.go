// Package edge holds Server-Sent Events connections on cloudwego/netpoll's epoll loop and serves the REST
// API with fasthttp on the same port. A held stream costs a small struct and netpoll's per-connection
// state: no goroutine, timer or channel. Frames are queued by reference and written in batches by a few
// writer goroutines; heartbeats go out from one timer.
package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/metrics"
)

// Config configures a Server. The zero value gives the defaults of DESIGN.md.
type Config struct {
	NodeID            string
	HeartbeatInterval time.Duration // default 15s
	HeadTimeout       time.Duration // a request head must arrive within this; default 10s
	MaxHeadBytes      int           // default 8 KiB
	MaxBodyBytes      int           // API request bodies; default 1 MiB
	MaxQueueBytes     int           // unsent bytes a stream may hold before it is cut off; default 1 MiB
	SendBufferBytes   int           // SO_SNDBUF of stream sockets: kernel memory per stream; 0 keeps the kernel's autotuning
	WriteTimeout      time.Duration // a stalled stream with queued bytes is cut off after this; default 10s
	APIIdleTimeout    time.Duration // keep-alive API connections; default 60s
	Retry             time.Duration // the retry: hint of every stream; default 3s
	ShutdownRetryMax  time.Duration // at shutdown, clients are told to come back within this, jittered; default 10s
	CORSOrigins       []string      // allowed origins; default ["*"]
	History           fanout.Config
	TopicEngine       fanout.Engine // shared topics (Redis); nil keeps them on this node
	ClientEngine      fanout.Engine // shared client streams (Redis); nil keeps them on this node
	Directory         Directory     // which node holds which client, and every node's counts; nil: this node only
	DirectoryInterval time.Duration // how often this node refreshes its directory entries; default 10s
	Logger            *slog.Logger
	Metrics           *metrics.Metrics // nil records nothing
	AdminAuth         auth.AdminAuth   // admin and publish calls; zero value: open
	MetricsAuth       auth.AdminAuth   // GET /metrics; zero value: open
	StreamAuth        *auth.StreamAuth // stream tokens; nil: open
	MaxStreamsPerIP   int              // 0: no bound
	// MaxAPIConnsPerIP bounds the API connections one address holds open (each keeps a goroutine while
	// it idles between requests); over it, 429. Default 256; negative: no bound.
	MaxAPIConnsPerIP int
	// HealthExtra adds fields to GET /admin/health (for example function health).
	HealthExtra func(ctx context.Context) map[string]any
	StatusExtra func(ctx context.Context) map[string]any // adds "extra" to the status snapshots of GET /admin/ (see StatusFunction)
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
	def(&c.DirectoryInterval, 10*time.Second)
	if c.MaxHeadBytes <= 0 {
		c.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 1 << 20
	}
	if !c.MetricsAuth.Enabled() && c.AdminAuth.Enabled() && c.StreamAuth.Enabled() {
		c.MetricsAuth = c.AdminAuth // a node with both secrets listens beyond loopback: /metrics is not public
	}
	if c.MaxAPIConnsPerIP == 0 {
		c.MaxAPIConnsPerIP = 256
	}
	if c.History.MaxFrameBytes == 0 { // a frame the node accepts always fits an empty queue
		c.History.MaxFrameBytes = c.MaxQueueBytes
	}
	if len(c.CORSOrigins) == 0 {
		c.CORSOrigins = []string{"*"}
	}
	if c.History.Budget == nil { // one history budget for the node: its topics and its clients
		c.History.Budget = fanout.NewBudget(c.History)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is one edge node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	started  time.Time
	router   *router.Router
	fast     *fasthttp.Server
	loop     netpoll.EventLoop
	runq     *runQueue
	topics   *fanout.Hub
	clients  *fanout.Hub
	conns    registry
	heads    headReaper
	tokens   tokenWatch
	openers  []opener // paths other packages open streams on; set before Serve
	perIP    ipLimiter
	apiPerIP ipLimiter // API connections per address
	// sharedHeads are the stream response heads without CORS headers and with the wildcard ones.
	sharedHeads [2]*fanout.Frame

	draining atomic.Bool
	drained  chan struct{} // signalled when draining and the last stream is gone
	stop     chan struct{}
	bg       sync.WaitGroup
	nextID   atomic.Uint64

	open            [kindCount]atomic.Int64
	opened          atomic.Uint64
	heartbeatFrames atomic.Uint64 // heartbeat frames built: one per tick, whatever the stream count
	slowConsumers   atomic.Uint64
	framesBytes     atomic.Uint64
	framesSent      atomic.Uint64
	published       atomic.Uint64 // events accepted by publish calls
}

// New builds a server and starts its writers and heartbeat timer; Shutdown stops them.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		started: time.Now(),
		router:  newRouter(),
		runq:    newRunQueue(),
		topics:  fanout.NewHub(withEngine(cfg.History, cfg.TopicEngine)),
		clients: fanout.NewHub(withEngine(cfg.History, cfg.ClientEngine)),
		drained: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	s.conns.init()
	s.heads.init()
	s.perIP.max = cfg.MaxStreamsPerIP
	s.apiPerIP.max = cfg.MaxAPIConnsPerIP
	s.sharedHeads[0] = s.buildStreamHead("")
	if s.corsAny() {
		s.sharedHeads[1] = s.buildStreamHead("*")
	}
	s.routes()
	s.fast = &fasthttp.Server{
		Handler:                       s.apiHandler(),
		ErrorHandler:                  s.fastError,
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
	workers := max(2, runtime.GOMAXPROCS(0))
	for range workers {
		s.bg.Go(func() { (&writer{srv: s}).run(s.runq) })
	}
	s.bg.Go(s.tick)
	if cfg.Directory != nil {
		s.bg.Go(s.directoryLoop)
	}
	return s, nil
}

// newRouter is a router that never redirects by itself: its redirects are absolute URLs built from the
// client's Host header. Routes that want a redirect answer with a relative Location.
func newRouter() *router.Router {
	r := router.New()
	r.RedirectTrailingSlash, r.RedirectFixedPath = false, false
	return r
}

// apiHandler is the chain every API request goes through: the path is made canonical before the guard
// and the router read it, so both see the same path.
func (s *Server) apiHandler() fasthttp.RequestHandler {
	return s.countRejections(s.cors(s.canonical(s.guard(s.router.Handler))))
}

func withEngine(c fanout.Config, e fanout.Engine) fanout.Config {
	c.Engine = e
	return c
}

// Router is the API router; other packages add their routes to it before Serve.
func (s *Server) Router() *router.Router { return s.router }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.loop.Serve(ln)
	if err != nil && s.draining.Load() {
		return nil
	}
	return err
}

// Shutdown stops accepting, tells every stream to come back later (a jittered retry: so a fleet does not
// reconnect at once), closes streams once that is written, finishes API requests in flight, and stops
// the server's goroutines. It returns ctx's error if the drain did not finish in time; everything is
// closed either way.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.draining.Swap(true) {
		return errors.New("edge: already shut down")
	}
	// Walk a snapshot: closing a stream runs its cleanup, which takes the registry's locks.
	for _, st := range s.conns.snapshot() {
		st.sendLast(s.goodbyeFrame(st.held))
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

func (s *Server) goodbyeFrame(held bool) *fanout.Frame {
	ms := s.cfg.Retry.Milliseconds() + rand.Int64N(max(1, s.cfg.ShutdownRetryMax.Milliseconds()))
	b := make([]byte, 0, 96)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, '\n')
	if held { // other protocols' clients (MCP) take any event for theirs: say it in a comment
		return &fanout.Frame{Bytes: append(b, ": node shutting down\n\n"...)}
	}
	return &fanout.Frame{Bytes: fanout.AppendFrame(b, "", "shutdown", fmt.Appendf(nil, `{"reason":"node shutting down","retry_ms":%d}`, ms))}
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
// decides the connection's fate: a stream request is parsed here and held; anything else goes to
// fasthttp once its head is complete. It never waits for input: what has arrived of a head is kept
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
	if !isStreamRequest(buf) && !s.isOpenerRequest(buf) {
		if len(buf) < len(streamPrefixTopic) && bytes.IndexByte(buf, '\n') < 0 {
			return later() // too short to tell
		}
		end := headEnd(buf)
		if end < 0 && len(buf) < s.cfg.MaxHeadBytes {
			return later() // fasthttp gets a whole head, so it never waits for one
		}
		if end > 0 && bareLF(buf[:end]) {
			s.heads.remove(conn)
			consumed()
			s.rejectRaw(conn, "", &apiError{status: fasthttp.StatusBadRequest, code: "bad_request", msg: errBareLF.Error()})
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
		s.rejectRaw(conn, "", e)
		return nil
	}
	consumed() // the head, and anything after it, which a stream client has no business sending
	st.mode.Store(modeStream)
	if head.path, err = canonicalPath(head.path); err != nil {
		s.rejectRaw(conn, head.get("Origin"), &apiError{status: fasthttp.StatusBadRequest, code: "bad_path", msg: err.Error()})
		return nil
	}
	if open := s.openerFor(head.path); open != nil && !isStreamRequest(buf) {
		s.openForOpener(conn, open, &head)
		return nil
	}
	req, aerr := s.parseStreamRequest(head.method, head.path, head.rawQuery, head.get)
	if aerr != nil {
		s.rejectRaw(conn, head.get("Origin"), aerr)
		return nil
	}
	s.openStream(conn, req)
	return nil
}

const (
	streamPrefixClient = "GET /sse/"
	streamPrefixTopic  = "GET /subscribe/"
)

func isStreamRequest(b []byte) bool {
	return bytes.HasPrefix(b, []byte(streamPrefixClient)) || bytes.HasPrefix(b, []byte(streamPrefixTopic))
}

// openForOpener holds a stream whose path another package owns, or answers its refusal.
func (s *Server) openForOpener(conn netpoll.Connection, open StreamOpener, head *requestHead) {
	origin := head.get("Origin")
	if origin != "" && !s.originAllowed(origin) {
		s.rejectRaw(conn, origin, &apiError{fasthttp.StatusForbidden, "origin_not_allowed", "origin not allowed"})
		return
	}
	spec, refusal := open(context.Background(), StreamRequest{Path: head.path, RawQuery: head.rawQuery, Header: head.get, Remote: remoteIP(conn)})
	if refusal != nil {
		s.cfg.Metrics.RequestRejected(rejectReason(refusal.Status))
		s.writeRaw(conn, origin, refusal.Status, refusal.ContentType, refusal.Body)
		return
	}
	req, aerr := heldStream(spec, head.get)
	if aerr != nil {
		req.refused()
		s.rejectRaw(conn, origin, aerr)
		return
	}
	s.openStream(conn, req)
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
	if !s.apiPerIP.acquire(ip) {
		s.rejectRaw(conn, "", &apiError{fasthttp.StatusTooManyRequests, "too_many_connections", "too many API connections from this address"})
		return
	}
	defer s.apiPerIP.release(ip)
	_ = conn.SetReadTimeout(0) // fasthttp sets its own deadlines
	if err := s.fast.ServeConn(&apiConn{Connection: conn, state: st, prefix: prefix}); err != nil {
		s.log.Debug("api connection ended", "remote", conn.RemoteAddr(), "err", redactHead(err.Error()))
	}
}

// openStream answers a stream request and holds the connection.
func (s *Server) openStream(conn netpoll.Connection, req streamRequest) {
	fdConn, ok := conn.(interface{ Fd() int })
	if !ok {
		req.refused()
		conn.Close()
		return
	}
	if !s.perIP.acquire(remoteIP(conn)) {
		req.refused()
		s.rejectRaw(conn, req.origin, &apiError{fasthttp.StatusTooManyRequests, "too_many_streams", "too many streams from this address"})
		return
	}
	st := &stream{
		srv:    s,
		conn:   conn,
		fd:     int32(fdConn.Fd()),
		id:     s.nextID.Add(1),
		kind:   req.kind,
		key:    req.key,
		meta:   req.meta,
		opened: uint32(time.Now().Unix()),
		held:   req.first != nil,
		onEnd:  req.onClose,
	}
	_ = conn.SetReadTimeout(0)
	if s.cfg.SendBufferBytes > 0 {
		_ = syscall.SetsockoptInt(int(st.fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, s.cfg.SendBufferBytes)
	}
	s.conns.add(st)
	s.open[st.kind].Add(1)
	s.opened.Add(1)
	s.cfg.Metrics.ConnOpened(st.kind.metric())
	_ = conn.AddCloseCallback(func(netpoll.Connection) error { st.cleanup(); return nil })
	if !conn.IsActive() { // closed before the callback was added: it will not run
		st.cleanup()
		return
	}
	// The head is queued but not written until the subscription is in place: a client that has seen
	// the head may publish at once and must receive it.
	head := s.streamHead(req.origin)
	switch {
	case req.first != nil:
		// The retry hint goes into the first event rather than being an event of its own: clients of
		// other protocols (MCP's HTTP+SSE) require their first event to be theirs. Heads are shared:
		// copy, never append to one.
		b := make([]byte, 0, len(head.Bytes)+len(req.first))
		b = append(b, head.Bytes[:len(head.Bytes)-1]...) // without the blank line that ends the hint
		st.hold(&fanout.Frame{Bytes: append(b, req.first...)})
	case req.kind == kindClient:
		st.hold(head)
		st.hold(s.connectedFrame(req.key))
	default:
		st.hold(head)
	}
	st.exp.Store(req.exp) // once the head is queued: an expiry found by the sweep must follow it
	sub, replay := s.hub(req.kind).Subscribe(req.key, st, req.resume, req.lastEventID)
	st.attach(sub)
	s.runq.push(st)
	s.tokens.watch(st, time.Now())
	s.cfg.Metrics.EventsReplayed(replay.Frames)
	if replay.Reset {
		s.cfg.Metrics.StreamReset()
		s.log.Debug("resume gap", "stream", req.kind.String(), "key", req.key, "last_event_id", req.lastEventID)
	}
}

func (s *Server) hub(k streamKind) *fanout.Hub {
	if k == kindTopic {
		return s.topics
	}
	return s.clients
}

// forget drops a closed stream from the registry.
func (s *Server) forget(st *stream, reason closeReason) {
	s.conns.remove(st)
	s.perIP.release(remoteIP(st.conn))
	s.open[st.kind].Add(-1)
	s.cfg.Metrics.ConnClosed(st.kind.metric(), reason.metric())
	s.log.Debug("stream closed", "id", st.id, "kind", st.kind.String(), "reason", reason.String())
	if s.draining.Load() && s.conns.len() == 0 {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// tick sends heartbeats and sweeps histories on one timer, and closes connections whose head is late.
func (s *Server) tick() {
	s.bg.Go(s.statusLoop) // status snapshots for GET /admin/; tick holds a bg count, so Add cannot race Wait
	hb := time.NewTicker(s.cfg.HeartbeatInterval)
	defer hb.Stop()
	reap := time.NewTicker(min(time.Second, s.cfg.HeadTimeout/2))
	defer reap.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-hb.C:
			s.heartbeat(now)
			s.topics.Sweep(now)
			s.clients.Sweep(now)
			s.observeHistory()
		case now := <-reap.C:
			s.heads.reap(now)
			s.tokens.due(now)
		}
	}
}

// heartbeat builds one frame and queues it to every stream, one registry shard at a time.
func (s *Server) heartbeat(now time.Time) {
	frame := &fanout.Frame{Bytes: fanout.AppendFrame(nil, "", "heartbeat", strconv.AppendInt(nil, now.Unix(), 10))}
	s.heartbeatFrames.Add(1)
	var comment *fanout.Frame // built on the first held stream of the tick, then shared
	s.conns.each(func(st *stream) {
		if s.tokens.check(st, now) {
			return // closed: its token expired
		}
		if !st.held {
			st.keepAlive(frame)
			return
		}
		// Other protocols' clients (MCP) may take any event for theirs: a comment keeps the line alive.
		if comment == nil {
			comment = &fanout.Frame{Bytes: append(strconv.AppendInt([]byte(": heartbeat "), now.Unix(), 10), '\n', '\n')}
			s.heartbeatFrames.Add(1)
		}
		st.keepAlive(comment)
	})
	s.cfg.Metrics.ObserveHeartbeatBatch(time.Since(now))
}

// cutSlowConsumer counts a stream cut off for not reading.
func (s *Server) cutSlowConsumer() {
	s.slowConsumers.Add(1)
	s.cfg.Metrics.SlowConsumer()
}

// Stats is a snapshot of the node's streams and counters.
type Stats struct {
	ClientStreams   int64
	TopicStreams    int64
	Opened          uint64
	HeartbeatFrames uint64
	SlowConsumers   uint64
	BytesSent       uint64
	FramesSent      uint64
	Published       uint64
}

// Stats returns current counts.
func (s *Server) Stats() Stats {
	return Stats{
		ClientStreams:   s.open[kindClient].Load(),
		TopicStreams:    s.open[kindTopic].Load(),
		Opened:          s.opened.Load(),
		HeartbeatFrames: s.heartbeatFrames.Load(),
		SlowConsumers:   s.slowConsumers.Load(),
		BytesSent:       s.framesBytes.Load(),
		FramesSent:      s.framesSent.Load(),
		Published:       s.published.Load(),
	}
}

// fastLogger routes fasthttp's log lines to slog.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Debug(redactHead(fmt.Sprintf(format, args...)))
}
