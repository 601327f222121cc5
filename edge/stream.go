package edge

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/transport"
)

// kindMetric is a stream kind's label in metrics.
func kindMetric(k transport.Kind) metrics.Kind {
	if k == transport.Topic {
		return metrics.KindTopic
	}
	return metrics.KindSSE
}

// closeReason says why a stream ended.
type closeReason uint8

const (
	reasonNone closeReason = iota
	reasonClient
	reasonSlowConsumer
	reasonShutdown
	reasonError
	reasonTokenExpired
)

func (r closeReason) String() string {
	return [...]string{"none", "client", "slow_consumer", "shutdown", "error", "token_expired"}[r]
}

func (r closeReason) metric() metrics.CloseReason {
	switch r {
	case reasonSlowConsumer:
		return metrics.CloseSlowConsumer
	case reasonShutdown:
		return metrics.CloseShutdown
	case reasonError:
		return metrics.CloseError
	case reasonTokenExpired:
		return metrics.CloseTimeout
	}
	return metrics.CloseClient
}

var errStreamClosed = errors.New("stream closed")

// stream is one held SSE connection. While idle it costs this struct and whatever netpoll keeps for the
// connection: no goroutine, timer or channel. Frames are queued by reference (their bytes are shared)
// and written by the server's writers; the connection has exactly one writer at a time.
type stream struct {
	srv    *Server
	conn   netpoll.Connection
	id     uint64
	key    string       // client ID or canonical topic
	extra  *streamExtra // nil unless the stream has metadata or an end hook: most have neither
	opened uint32       // unix seconds (32 bits: with exp, one word)
	// exp is when the stream's token stops being accepted, in unix seconds (0: no token, or the stream
	// has expired). Written by token refreshes, read by the heartbeat sweep (token.go).
	exp atomic.Uint32

	mu      sync.Mutex
	pending []*fanout.Frame // frames not yet written; the first from offset off
	spare   []*fanout.Frame // recycled backing array for pending
	queued  int             // bytes in pending not yet written
	sub     *fanout.Subscription
	// multi holds the subscriptions and cursor of a multi-topic stream (multi.go); nil on a single-key
	// stream, until a server-side subscribe makes a client stream multi.
	multi atomic.Pointer[multi]

	wmu sync.Mutex // held around raw writes, so the fd cannot be closed and reused under one

	fd      int32
	off     int32 // guarded by mu: bytes of pending[0] already written (a frame is far below 2 GiB)
	cleaned atomic.Bool
	kind    transport.Kind
	held    bool // held for another package (HoldStream): heartbeats go as comments, not events
	// Guarded by mu (packed here, with the other small fields, to keep the struct in a smaller size class).
	writing bool // a writer owns the socket; the stream is in the run queue or being written
	closing bool // no more frames are accepted
	finish  bool // close once pending is written (graceful shutdown)
	gone    bool // cleanup ran
	reason  closeReason
	dead    bool // guarded by wmu
	live    bool // guarded by mu: subscribed, so a backlog past the bound cuts it (see Send)
}

// streamExtra is what few streams have, kept out of stream so that an idle stream stays in the 176-byte
// size class (docs/performance.md, "What an idle stream costs").
type streamExtra struct {
	meta  map[string]string // the client's metadata, shown by GET /admin/connections
	onEnd func()            // set at open for streams held for another package; run once the stream is gone
}

// newStreamExtra returns the extra of a stream with meta and onEnd, nil when it has neither.
func newStreamExtra(meta map[string]string, onEnd func()) *streamExtra {
	if meta == nil && onEnd == nil {
		return nil
	}
	return &streamExtra{meta: meta, onEnd: onEnd}
}

// metadata is the client's metadata, nil when it sent none.
func (s *stream) metadata() map[string]string {
	if s.extra == nil {
		return nil
	}
	return s.extra.meta
}

// Send queues frame. It never blocks or writes: it is called with hub locks held. A stream whose unsent
// bytes are over the bound is closed as a slow consumer; the client may resume with Last-Event-ID. The
// bound is on the backlog a frame finds, not on the frame, so one event as large as the publish bound
// (MaxQueueBytes) never cuts a stream that is writing it; frames are shared, so a stream's queue costs
// pointers, not copies. Frames sent while the stream opens (its replay, which history bounds) are never
// cut: sub is set once the hub's Subscribe has returned.
func (s *stream) Send(f *fanout.Frame) {
	if f.Refresh { // not an event: a token refresh, or a subscription change, for this client's streams
		if transport.IsSubsChange(f.Bytes) {
			s.subsChange(f.Bytes)
			return
		}
		s.refresh(f.Bytes)
		return
	}
	if m := s.multi.Load(); m != nil && m.converted && f.ID != "" && !f.End {
		m.send(m.own, f) // an event of a client stream made multi: it carries the cursor now
		return
	}
	s.mu.Lock()
	start, cut := s.queueLocked(f)
	s.mu.Unlock()
	s.afterQueue(start, cut)
}

// queueLocked queues f, or closes the stream as a slow consumer; the caller holds mu, then calls
// afterQueue with what it returns.
func (s *stream) queueLocked(f *fanout.Frame) (start, cut bool) {
	if s.closing {
		return false, false
	}
	if s.live && s.queued > s.srv.cfg.MaxQueueBytes {
		s.closing = true
		s.reason = reasonSlowConsumer
		return false, true
	}
	s.pending = append(s.pending, f)
	s.queued += len(f.Bytes)
	if f.End { // the writer closes the stream once this is written: never here, under the hub's lock
		s.finish = true
	}
	start = !s.writing
	s.writing = true
	return start, false
}

// afterQueue does what queueLocked asked for, without mu: start the writer, or cut the stream.
func (s *stream) afterQueue(start, cut bool) {
	if cut {
		s.srv.cutSlowConsumer()
		go s.abort() // not here: closing unsubscribes, which takes the hub lock our caller holds
		return
	}
	if start {
		s.srv.runq.push(s)
	}
}

// keepAlive queues a heartbeat unless frames are waiting: those keep the line busy, and a heartbeat
// behind them would only add to a backlog (and cut, as a slow consumer, a stream still writing one large
// event). It reports whether it queued f.
func (s *stream) keepAlive(f *fanout.Frame) bool {
	s.mu.Lock()
	busy := s.queued > 0
	s.mu.Unlock()
	if !busy {
		s.Send(f)
	}
	return !busy
}

// hold queues frame and keeps the stream out of the run queue (its writing flag set) until the caller
// pushes it; used while a stream is being opened.
func (s *stream) hold(f *fanout.Frame) {
	s.mu.Lock()
	s.pending = append(s.pending, f)
	s.queued += len(f.Bytes)
	s.writing = true
	s.mu.Unlock()
}

// sendLast queues a final frame and closes the stream once everything queued is written.
func (s *stream) sendLast(f *fanout.Frame) {
	s.Send(f)
	s.mu.Lock()
	s.finish = true
	idle := !s.writing
	s.mu.Unlock()
	if idle {
		s.close(reasonShutdown)
	}
}

// flush writes what is queued without blocking. If the socket fills, the rest is left to drainBlocking
// on a goroutine of the stream's own, so the calling writer moves on. It takes the stream's lock twice
// per round (to take the queue, then to account for the write and look for more), never per frame.
func (s *stream) flush(w *writer) {
	s.mu.Lock()
	for {
		frames, off := s.pending, int(s.off)
		if len(frames) == 0 {
			s.writing = false
			finish := s.finish
			s.mu.Unlock()
			if finish {
				s.close(reasonShutdown)
			}
			return
		}
		s.pending, s.spare, s.off = s.spare, nil, 0
		s.mu.Unlock()

		all, oldest := frames, frames[0]
		written, done := 0, 0
		var err error
		for len(frames) > 0 {
			var n, d int
			n, err = s.writeRaw(w, frames, off)
			if n > 0 {
				frames, off, d = advance(frames, off, n)
				written += n
				done += d
			}
			if err != nil {
				break
			}
		}
		if written > 0 {
			w.record(written, done, oldest)
		}
		s.mu.Lock()
		s.queued -= written
		if err != nil {
			if isWouldBlock(err) {
				s.pending = append(append(make([]*fanout.Frame, 0, len(frames)+len(s.pending)), frames...), s.pending...)
				s.off = int32(off)
				s.mu.Unlock()
				go s.drainBlocking()
			} else {
				s.mu.Unlock()
				s.close(reasonError)
			}
			return
		}
		clear(all)
		s.spare = all[:0]
	}
}

// writeRaw writes under wmu, which cleanup takes before netpoll closes the fd.
func (s *stream) writeRaw(w *writer, frames []*fanout.Frame, off int) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.dead {
		return 0, errStreamClosed
	}
	return w.writev(int(s.fd), frames, off)
}

// drainBlocking writes through netpoll's writer, which waits for the socket to drain up to the write
// timeout. Only a stalled client gets here, and only until it drains, overflows or times out.
func (s *stream) drainBlocking() {
	w := s.conn.Writer()
	for {
		s.mu.Lock()
		frames, off := s.pending, int(s.off)
		if len(frames) == 0 || s.closing && !s.finish {
			s.writing = false
			finish := s.finish && len(frames) == 0
			s.mu.Unlock()
			if finish {
				s.close(reasonShutdown)
			}
			return
		}
		s.pending, s.off = nil, 0
		s.mu.Unlock()
		total := 0
		for i, f := range frames {
			b := f.Bytes
			if i == 0 {
				b = b[off:]
			}
			if len(b) > 0 {
				if _, err := w.WriteBinary(b); err != nil {
					s.close(reasonError)
					return
				}
				total += len(b)
			}
		}
		if err := w.Flush(); err != nil {
			s.mu.Lock()
			cut := !s.closing // else it was closed already (overflow, shutdown) and that is why Flush failed
			s.mu.Unlock()
			if cut { // the write timeout passed with bytes still unsent
				s.srv.cutSlowConsumer()
			}
			s.close(reasonSlowConsumer)
			return
		}
		s.wrote(total, len(frames), frames[0])
	}
}

// wrote accounts for n bytes written by drainBlocking, completing done frames; oldest was the first
// frame of the write, whose publish time gives the delivery latency.
func (s *stream) wrote(n, done int, oldest *fanout.Frame) {
	s.mu.Lock()
	s.queued -= n
	s.mu.Unlock()
	s.srv.framesBytes.Add(uint64(n))
	s.srv.framesSent.Add(uint64(done))
	observeWrite(s.srv.cfg.Metrics, n, done, oldest)
}

func observeWrite(m *metrics.Metrics, n, done int, oldest *fanout.Frame) {
	if m == nil {
		return
	}
	m.FramesSent(done, n)
	if !oldest.At.IsZero() {
		m.ObserveDelivery(time.Since(oldest.At))
	}
}

// advance drops the first n bytes of frames (the first from off) and says how many frames it finished.
func advance(frames []*fanout.Frame, off, n int) (rest []*fanout.Frame, restOff, done int) {
	for len(frames) > 0 {
		left := len(frames[0].Bytes) - off
		if n < left {
			return frames, off + n, done
		}
		n -= left
		frames[0] = nil
		frames, off = frames[1:], 0
		done++
	}
	return frames, 0, done
}

// close records why the stream ends (the first reason wins) and closes the connection; netpoll then
// runs cleanup.
func (s *stream) close(reason closeReason) {
	s.mu.Lock()
	if s.reason == reasonNone {
		s.reason = reason
	}
	s.closing = true
	s.mu.Unlock()
	s.conn.Close()
}

// abort closes the connection with SO_LINGER 0: the kernel resets it and frees what it still held for
// a client that stopped reading, rather than keeping it in FIN-WAIT-1 with a full send buffer. Under wmu,
// so the option never lands on a reused fd.
func (s *stream) abort() {
	s.wmu.Lock()
	if !s.dead {
		_ = syscall.SetsockoptLinger(int(s.fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	}
	s.wmu.Unlock()
	s.conn.Close()
}

// cleanup runs once, from netpoll's close callback (before the fd is closed) or from openStream when the
// peer was gone before the callback was added.
func (s *stream) cleanup() {
	if !s.cleaned.CompareAndSwap(false, true) {
		return
	}
	s.wmu.Lock()
	s.dead = true
	s.wmu.Unlock()
	s.mu.Lock()
	s.closing, s.gone = true, true
	if s.reason == reasonNone {
		s.reason = reasonClient
	}
	reason, sub := s.reason, s.sub
	s.pending, s.spare, s.queued = nil, nil, 0
	s.mu.Unlock()
	if sub != nil {
		s.srv.node.Unsubscribe(s.kind, sub)
	}
	if m := s.multi.Load(); m != nil {
		m.close()
	}
	s.srv.forget(s, reason)
	if s.extra != nil && s.extra.onEnd != nil {
		go s.extra.onEnd() // it may wait on shared state; cleanup may run on netpoll's poller
	}
}

// attach records the subscription, or drops it when the stream is already gone.
func (s *stream) attach(sub *fanout.Subscription) {
	s.mu.Lock()
	gone := s.gone
	if !gone {
		s.sub, s.live = sub, true
	}
	s.mu.Unlock()
	if gone {
		s.srv.node.Unsubscribe(s.kind, sub)
	}
}
