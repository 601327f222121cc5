package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/httpjson"
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

// unixDeadline is t in unix seconds, rounded up, or 0 for the zero time (no deadline).
func unixDeadline(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return uint32(min(max(sec, 1), math.MaxUint32))
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
	s.sendLast(s.srv.tokenExpiredFrame(s, exp))
	return true
}

// tokenExpiredFrame is the last event of a stream whose token expired, and the retry hint after it.
func (srv *Server) tokenExpiredFrame(st *stream, exp uint32) *fanout.Frame {
	body := struct {
		Reason    string `json:"reason"`
		ExpiredAt string `json:"expired_at"`
		ClientID  string `json:"client_id,omitempty"`
		Topic     string `json:"topic,omitempty"`
		Message   string `json:"message"`
	}{Reason: "token_expired", ExpiredAt: time.Unix(int64(exp), 0).UTC().Format(time.RFC3339),
		Message: "reconnect with a new token and Last-Event-ID; refresh a live stream before its token expires with POST /sse/{clientId}/token"}
	if st.kind == kindTopic {
		body.Topic = st.key
	} else {
		body.ClientID = st.key
	}
	data, _ := json.Marshal(body) // strings always encode
	b := fanout.AppendFrame(nil, "", "token_expired", data)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, srv.cfg.Retry.Milliseconds(), 10)
	return &fanout.Frame{Bytes: append(b, "\n\n"...)}
}

// refresh applies a grant from a refresh of this stream's client (under the hub's lock: it only parses
// and stores). The stream's deadline becomes the grant's when the grant covers what the stream reads;
// a stream without a deadline (none was required, or it has already expired) is left alone.
func (s *stream) refresh(grant []byte) {
	exp, topics, err := parseGrant(grant)
	if err != nil {
		s.srv.log.Warn("ignoring a malformed token refresh", "id", s.id, "err", err)
		return
	}
	if !grantCovers(topics, s.reads()) {
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
	if s.kind == kindTopic {
		return []string{s.key}
	}
	return nil
}

// grantCovers reports whether a token with these topic prefixes may read every topic of reads.
func grantCovers(topics, reads []string) bool {
	c := auth.Claims{Topics: topics}
	for _, t := range reads {
		if !c.AllowsTopic(t) {
			return false
		}
	}
	return true
}

// A grant is what a refresh carries to the nodes holding a client's streams: a verified token's
// deadline and topic prefixes, as text ("<unix seconds>\n<topic>\n<topic>..."), never the token.
const maxGrantTopics = 256

var errBadGrant = errors.New("bad grant")

// appendGrant encodes a grant; topics holding a line break are dropped (no topic has one).
func appendGrant(dst []byte, exp uint32, topics []string) []byte {
	dst = strconv.AppendUint(dst, uint64(exp), 10)
	n := 0
	for _, t := range topics {
		if n == maxGrantTopics || t == "" || strings.ContainsAny(t, "\r\n") {
			continue
		}
		dst = append(append(dst, '\n'), t...)
		n++
	}
	return dst
}

// parseGrant decodes a grant.
func parseGrant(b []byte) (exp uint32, topics []string, err error) {
	if len(b) > auth.MaxTokenLen {
		return 0, nil, fmt.Errorf("%w: %d bytes", errBadGrant, len(b))
	}
	head, rest, more := bytes.Cut(b, []byte("\n"))
	v, err := strconv.ParseUint(string(head), 10, 32)
	if err != nil || v == 0 {
		return 0, nil, fmt.Errorf("%w: deadline %q", errBadGrant, head)
	}
	for more {
		var t []byte
		t, rest, more = bytes.Cut(rest, []byte("\n"))
		if len(t) == 0 || len(topics) == maxGrantTopics || bytes.IndexByte(t, '\r') >= 0 {
			return 0, nil, fmt.Errorf("%w: topic %d", errBadGrant, len(topics))
		}
		topics = append(topics, string(t))
	}
	return uint32(v), topics, nil
}

// handleTokenRefresh answers POST /sse/{clientId}/token, authorized by the new token (Authorization:
// Bearer, or X-Authorization as on streams): it must be valid, unexpired and for this client. The
// deadline of the client's live streams on every node becomes the new token's.
func (s *Server) handleTokenRefresh(ctx *fasthttp.RequestCtx) {
	refused := func(status int, code, msg string) {
		s.cfg.Metrics.StreamTokenRefresh(false)
		s.fail(ctx, status, code, msg)
	}
	id := userValue(ctx, "clientId")
	if !validClientID(id) {
		refused(fasthttp.StatusBadRequest, "bad_client_id", "client ID must be 1-128 printable characters without '/'")
		return
	}
	if !s.cfg.StreamAuth.Enabled() {
		refused(fasthttp.StatusNotFound, "token_auth_off", "stream tokens are off (no TOKEN_SECRET): streams do not expire")
		return
	}
	token := auth.TokenFrom(ctx.Request.Header.Peek("X-Authorization"), nil)
	if token == "" {
		token = auth.TokenFrom(ctx.Request.Header.Peek("Authorization"), nil)
	}
	claims, err := s.cfg.StreamAuth.AuthorizeClient(token, id)
	if err != nil {
		status, code := auth.Code(err)
		refused(status, code, err.Error())
		return
	}
	exp := unixDeadline(s.cfg.StreamAuth.Deadline(claims))
	// Not the RequestCtx as parent: a timeout derived from it would cost a goroutine.
	n, err := s.clients.Refresh(context.Background(), id, appendGrant(nil, exp, claims.Topics))
	if err != nil {
		refused(fasthttp.StatusServiceUnavailable, "state_unavailable", err.Error())
		return
	}
	if n == 0 {
		refused(fasthttp.StatusNotFound, "no_stream", "no stream of client "+id+" is open")
		return
	}
	s.cfg.Metrics.StreamTokenRefresh(true)
	body := map[string]any{"client_id": id, "expires_at": time.Unix(int64(exp), 0).UTC().Format(time.RFC3339)}
	if n > 0 { // known only when the node is alone
		body["streams"] = n
	}
	httpjson.Write(ctx, fasthttp.StatusOK, body)
}
