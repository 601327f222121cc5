package edge

import (
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/transport"
)

// HoldStream answers ctx, a request that reached the API on a keep-alive connection, with the stream
// spec describes: fasthttp hands the connection back by hijacking. The API's stream routes and MCP call
// it after their own opener said yes.
func (s *Server) HoldStream(ctx *fasthttp.RequestCtx, spec transport.Spec) {
	refuse := func(status int, code, msg string) {
		refused(spec)
		httpjson.WriteError(ctx, status, code, msg)
	}
	ac, ok := ctx.Conn().(*apiConn)
	if !ok {
		refuse(fasthttp.StatusInternalServerError, "internal", "stream on a foreign connection")
		return
	}
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin != "" && !s.cfg.CORS.Allowed(origin) {
		refuse(fasthttp.StatusForbidden, "origin_not_allowed", "origin not allowed")
		return
	}
	if !spec.KeepAliveValid() { // the opener's mistake: its caller counts the refusal (GRIP: stream_refused)
		s.log.Warn("stream refused: a keep-alive the transport cannot honour", "topics", len(spec.Topics))
		refuse(fasthttp.StatusInternalServerError, "bad_keep_alive", "the stream's keep-alive cannot be honoured")
		return
	}
	ac.state.mode.Store(modeStream)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(net.Conn) { s.openStream(ac.Connection, origin, spec) })
}

// openStream answers a stream request and holds the connection.
func (s *Server) openStream(conn netpoll.Connection, origin string, spec transport.Spec) {
	fdConn, ok := conn.(interface{ Fd() int })
	if !ok {
		refused(spec)
		conn.Close()
		return
	}
	if !s.perIP.acquire(remoteIP(conn)) {
		refused(spec)
		s.wire.reject(conn, origin, &apiError{fasthttp.StatusTooManyRequests, "too_many_streams", "too many streams from this address"})
		return
	}
	st := &stream{
		srv:    s,
		conn:   conn,
		fd:     int32(fdConn.Fd()),
		id:     s.nextID.Add(1),
		kind:   spec.Kind,
		key:    streamKey(spec),
		extra:  newStreamExtra(spec.Meta, spec.OnClose),
		opened: uint32(time.Now().Unix()),
		held:   spec.First != nil,
	}
	_ = conn.SetReadTimeout(0)
	if s.cfg.SendBufferBytes > 0 {
		_ = syscall.SetsockoptInt(int(st.fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, s.cfg.SendBufferBytes)
	}
	// The head is queued but not written until the subscription is in place: a client that has seen
	// the head may publish at once and must receive it. It is queued before the stream is registered,
	// so that the heartbeat tick, which walks the registry, can never queue a heartbeat ahead of it (a
	// CI run saw "event: heartbeat" where the status line belonged).
	head := s.wire.streamHead(origin)
	switch {
	case spec.First != nil:
		// The retry hint goes into the first event rather than being an event of its own: clients of
		// other protocols (MCP's HTTP+SSE) require their first event to be theirs. Heads are shared:
		// copy, never append to one.
		b := make([]byte, 0, len(head.Bytes)+len(spec.First))
		b = append(b, head.Bytes[:len(head.Bytes)-1]...) // without the blank line that ends the hint
		st.hold(&fanout.Frame{Bytes: append(b, spec.First...)})
	case spec.Kind == transport.Client:
		st.hold(head)
		st.hold(s.wire.connected(spec.Key))
	default:
		st.hold(head)
	}
	s.conns.add(st)
	s.open[st.kind].Add(1)
	s.opened.Add(1)
	s.cfg.Metrics.ConnOpened(kindMetric(st.kind))
	_ = conn.AddCloseCallback(func(netpoll.Connection) error { st.cleanup(); return nil })
	if !conn.IsActive() { // closed before the callback was added: it will not run
		st.cleanup()
		return
	}
	st.exp.Store(spec.Expires) // once the head is queued: an expiry found by the sweep must follow it
	if len(spec.Topics) > 0 || len(spec.Subscribed) > 0 {
		s.openMulti(st, spec)
	} else {
		st.attach(s.node.Subscribe(spec.Kind, spec.Key, st, singlePosition(spec.Key, spec.LastEventID)))
	}
	s.runq.push(st)
	s.tokens.watch(st, time.Now())
}

// forget drops a closed stream from the registry.
func (s *Server) forget(st *stream, reason closeReason) {
	s.conns.remove(st)
	s.perIP.release(remoteIP(st.conn))
	s.open[st.kind].Add(-1)
	s.cfg.Metrics.ConnClosed(kindMetric(st.kind), reason.metric())
	s.log.Debug("stream closed", "id", st.id, "kind", st.kind.String(), "reason", reason.String())
	if s.draining.Load() && s.conns.len() == 0 {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// refused runs spec's OnClose for a stream that will never be held: whoever opened it (MCP made a
// session for it) learns it is over, as when a held stream ends.
func refused(spec transport.Spec) {
	if spec.OnClose != nil {
		go spec.OnClose()
	}
}

// streamKey is what GET /admin/connections shows as a stream's key: its client ID or topic, the topics
// of a multi-topic topic stream.
func streamKey(spec transport.Spec) string {
	if spec.Kind == transport.Topic && len(spec.Topics) > 0 {
		return strings.Join(spec.Topics, ",")
	}
	return spec.Key
}

// singlePosition is where a single-key stream resumes: lastEventID, or, when that is a cursor (the
// stream was a multi-topic one, or a client stream the server had subscribed to topics), the position
// the cursor holds for key; a cursor without one resumes with a reset, as an unknown id does.
func singlePosition(key, lastEventID string) string {
	if !strings.HasPrefix(lastEventID, fanout.CursorPrefix) {
		return lastEventID
	}
	c, err := fanout.DecodeCursor(lastEventID)
	if err != nil {
		return lastEventID
	}
	if p := c.Positions([]string{key})[0]; p != "" {
		return p
	}
	return lastEventID
}
