package edge

import (
	"sync"
	"time"

	"github.com/sseedge/sseedge/transport"
)

// A stream authorized by a token lives until the token's deadline (exp plus the leeway), then ends with
// event token_expired and a retry hint. POST /sse/{clientId}/token, authorized by a new token for the
// same client, moves the deadline of the client's live streams on every node, so a long-lived stream
// need not reconnect. Topic streams have no identity to refresh: they end at their deadline and the
// client reconnects with a new token and Last-Event-ID, losing nothing.
//
// It costs a held stream nothing but its 32-bit deadline (stream.exp): no timer, no goroutine. The
// heartbeat sweep, which visits every stream anyway, closes the expired ones and hands those expiring
// before the next sweep to tokenWatch, which the per-second head reaper drives; so a stream ends within
// a second of its deadline.

// tokenWatch holds the streams whose token expires before the next heartbeat sweep.
type tokenWatch struct {
	mu   sync.Mutex
	soon []*stream // a stream may be listed twice; each check reads its deadline afresh
}

// window is how far ahead of now a deadline is handed to the watch: past the next sweep.
func window(st *stream, now time.Time) int64 {
	return now.Add(st.srv.cfg.HeartbeatInterval + time.Second).Unix()
}

// watch lists st if its deadline comes before the next sweep could see it.
func (w *tokenWatch) watch(st *stream, now time.Time) {
	if exp := st.exp.Load(); exp != 0 && int64(exp) <= window(st, now) {
		w.mu.Lock()
		w.soon = append(w.soon, st)
		w.mu.Unlock()
	}
}

// check runs on every stream at each heartbeat sweep: it closes st if its token has expired (and then
// reports true, so the sweep sends it no heartbeat), or watches it if it expires before the next sweep.
func (w *tokenWatch) check(st *stream, now time.Time) bool {
	exp := st.exp.Load()
	switch {
	case exp == 0:
		return false
	case int64(exp) <= now.Unix():
		return st.expire(exp)
	}
	w.watch(st, now)
	return false
}

// due runs every second (the head reaper's tick): it closes the watched streams whose deadline has come
// and forgets those refreshed past the next sweep, closed, or gone.
func (w *tokenWatch) due(now time.Time) {
	w.mu.Lock()
	soon := w.soon
	w.soon = nil
	w.mu.Unlock()
	if len(soon) == 0 {
		return
	}
	keep := soon[:0]
	for _, st := range soon {
		exp := st.exp.Load()
		switch {
		case exp == 0 || st.cleaned.Load():
		case int64(exp) <= now.Unix():
			st.expire(exp)
		case int64(exp) <= window(st, now):
			keep = append(keep, st)
		}
	}
	clear(soon[len(keep):])
	if len(keep) > 0 {
		w.mu.Lock()
		w.soon = append(w.soon, keep...)
		w.mu.Unlock()
	}
}

// expire ends the stream because its token expired at exp, unless a refresh moved exp meanwhile; the
// client is told with event token_expired and a retry hint. It reports whether the stream is closing.
func (s *stream) expire(exp uint32) bool {
	if !s.exp.CompareAndSwap(exp, 0) {
		return false
	}
	s.mu.Lock()
	closing := s.closing
	if s.reason == reasonNone {
		s.reason = reasonTokenExpired
	}
	s.mu.Unlock()
	if closing {
		return true
	}
	s.srv.cfg.Metrics.StreamTokenExpired()
	s.srv.log.Debug("stream token expired", "id", s.id, "kind", s.kind.String())
	s.sendLast(s.srv.wire.tokenExpired(s.kind, s.key, exp))
	return true
}

// refresh applies a grant from a refresh of this stream's client (under the hub's lock: it only parses
// and stores). The stream's deadline becomes the grant's when the grant covers what the stream reads;
// a stream without a deadline (none was required, or it has already expired) is left alone.
func (s *stream) refresh(grant []byte) {
	exp, topics, err := transport.ParseGrant(grant)
	if err != nil {
		s.srv.log.Warn("ignoring a malformed token refresh", "id", s.id, "err", err)
		return
	}
	if !transport.GrantCovers(topics, s.reads()) {
		return
	}
	for {
		cur := s.exp.Load()
		if cur == 0 {
			return
		}
		if s.exp.CompareAndSwap(cur, exp) {
			break
		}
	}
	s.srv.tokens.watch(s, time.Now()) // a shorter deadline than the one the sweep saw
}

// reads is what a token must cover for the stream besides its sub: the topic of a topic stream; a
// client stream reads its own key only, which the sub covers.
func (s *stream) reads() []string {
	if m := s.multi.Load(); m != nil {
		return m.asked // topics added by the server are its decision, not the token's
	}
	if s.kind == transport.Topic {
		return []string{s.key}
	}
	return nil
}
