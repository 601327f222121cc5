package edge

import (
	"strconv"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// tick sends heartbeats on one timer, and closes connections whose head or token is late.
func (s *Server) tick() {
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
	keepAlives := 0           // streams' own keep-alives queued by this tick
	s.conns.each(func(st *stream) {
		if s.tokens.check(st, now) {
			return // closed: its token expired
		}
		if m := st.multi.Load(); m != nil && m.ka != nil { // its opener's keep-alive, in its own window
			if m.ka.tick(st) {
				keepAlives++
			}
			return
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
	s.keepAlives.Add(uint64(keepAlives))
	s.cfg.Metrics.KeepAlivesSent(keepAlives)
	s.cfg.Metrics.ObserveHeartbeatBatch(time.Since(now))
}

// cutSlowConsumer counts a stream cut off for not reading.
func (s *Server) cutSlowConsumer() {
	s.slowConsumers.Add(1)
	s.cfg.Metrics.SlowConsumer()
}

// Stats returns current counts.
func (s *Server) Stats() transport.Stats {
	return transport.Stats{
		ClientStreams:   s.open[transport.Client].Load(),
		TopicStreams:    s.open[transport.Topic].Load(),
		Opened:          s.opened.Load(),
		HeartbeatFrames: s.heartbeatFrames.Load(),
		KeepAlives:      s.keepAlives.Load(),
		SlowConsumers:   s.slowConsumers.Load(),
		BytesSent:       s.framesBytes.Load(),
		FramesSent:      s.framesSent.Load(),
		Draining:        s.draining.Load(),
	}
}

// Connections lists the held streams, in no order.
func (s *Server) Connections() []transport.Conn {
	all := s.conns.snapshot()
	out := make([]transport.Conn, len(all))
	for i, st := range all {
		out[i] = transport.Conn{ID: st.id, Kind: st.kind, Key: st.key, Meta: st.metadata(), Remote: st.conn.RemoteAddr().String(),
			Opened: time.Unix(int64(st.opened), 0)}
	}
	return out
}
