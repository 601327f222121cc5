package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/fanout"
)

// StatusTopic is the node-local topic on which the edge publishes a status snapshot every second, for
// the status page (GET /admin/) and for anyone with the admin token who wants to watch a node live.
const StatusTopic = ReservedTopicPrefix + "/status"

// StatusEvent is the event name of the snapshots on StatusTopic.
const StatusEvent = "status"

// statusInterval is the period of the status snapshots; the page computes rates from their deltas.
const statusInterval = time.Second

// statusPage is the status page: one self-contained HTML document, inline style and script, no build
// step. It is served with a Content-Security-Policy that allows exactly its own inline style and script
// (by hash), so that a piece of data the page renders could never run even if it slipped through.
//
//go:embed status.html
var statusPage []byte

var statusCSP = "default-src 'none'; " +
	"script-src '" + inlineHash(statusPage, "script") + "'; " +
	"style-src '" + inlineHash(statusPage, "style") + "'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// inlineHash is the CSP source ("sha256-...") of the content of the one <tag> element of page.
func inlineHash(page []byte, tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	i := bytes.Index(page, open)
	j := bytes.Index(page, end)
	if i < 0 || j < i || bytes.Count(page, open) != 1 {
		panic("edge: status.html must hold exactly one <" + tag + "> element")
	}
	sum := sha256.Sum256(page[i+len(open) : j])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// StatusFunction is one entry of the "functions" list that Config.StatusExtra may return; the status page
// shows each with its breaker state and its invoke rate (from the deltas of Invocations). Keep the list
// short (say the 50 busiest): it goes out every second to every viewer.
type StatusFunction struct {
	Name        string `json:"name"`
	Breaker     string `json:"breaker"`            // "closed", "open" or "half-open" (the worst endpoint's)
	Invocations uint64 `json:"invocations"`        // invocations since start, a counter
	Failures    uint64 `json:"failures,omitempty"` // failed invocations since start, a counter
}

// statusSnapshot is one event on StatusTopic. Counters are totals since start; the page turns their
// deltas into rates, so a snapshot stays small and a missed one loses nothing.
type statusSnapshot struct {
	NodeID        string         `json:"node_id"`
	Time          int64          `json:"t"`       // Unix ms
	Started       int64          `json:"started"` // Unix ms
	Draining      bool           `json:"draining,omitempty"`
	Conns         statusConns    `json:"conns"`
	Opened        uint64         `json:"opened"`
	Published     uint64         `json:"published"`
	BytesSent     uint64         `json:"bytes_sent"`
	FramesSent    uint64         `json:"frames_sent"`
	Heartbeats    uint64         `json:"heartbeats"`
	SlowConsumers uint64         `json:"slow_consumers"`
	Extra         map[string]any `json:"extra,omitempty"` // Config.StatusExtra
}

type statusConns struct {
	SSE   int64 `json:"sse"`
	Topic int64 `json:"topic"`
}

// statusRoutes serves the status page.
func (s *Server) statusRoutes() {
	s.router.GET("/admin/", s.handleStatusPage)
}

// redirectToStatusPage answers GET /admin (the router holds /admin/ and /admin in one node) with a
// relative Location, never one built from the Host header.
func redirectToStatusPage(ctx *fasthttp.RequestCtx) {
	loc := "/admin/"
	if q := ctx.URI().QueryString(); len(q) > 0 {
		loc += "?" + string(q)
	}
	ctx.Response.Header.Set("Location", loc)
	ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
}

func (s *Server) handleStatusPage(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentType("text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer") // the page's URL may carry ?token=
	ctx.SetBody(statusPage)
}

// statusLoop publishes a snapshot to StatusTopic every statusInterval until the server stops. It runs
// on s.bg.
func (s *Server) statusLoop() {
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.publishStatus(now)
		}
	}
}

// publishStatus publishes one snapshot. With no topic stream open nobody can be listening, and it
// skips the work.
func (s *Server) publishStatus(now time.Time) {
	if s.draining.Load() || s.open[kindTopic].Load() == 0 {
		return
	}
	st := s.Stats()
	snap := statusSnapshot{
		NodeID:        s.cfg.NodeID,
		Time:          now.UnixMilli(),
		Started:       s.started.UnixMilli(),
		Conns:         statusConns{SSE: st.ClientStreams, Topic: st.TopicStreams},
		Opened:        st.Opened,
		Published:     st.Published,
		BytesSent:     st.BytesSent,
		FramesSent:    st.FramesSent,
		Heartbeats:    st.HeartbeatFrames,
		SlowConsumers: st.SlowConsumers,
		Extra:         s.statusExtra(),
	}
	data, err := json.Marshal(snap)
	if err != nil { // only an unencodable StatusExtra value can cause this
		s.log.Warn("status snapshot not encodable; dropping StatusExtra", "err", err)
		snap.Extra = nil
		if data, err = json.Marshal(snap); err != nil {
			return
		}
	}
	if _, _, err := s.topics.PublishLocal(StatusTopic, fanout.Event{Name: StatusEvent, Data: data}); err != nil {
		s.log.Warn("status snapshot not published", "err", err)
	}
}

// statusExtra calls Config.StatusExtra with a deadline shorter than the snapshot period; a panic in it
// is logged, not fatal.
func (s *Server) statusExtra() (extra map[string]any) {
	if s.cfg.StatusExtra == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("StatusExtra panicked", "panic", v)
			extra = nil
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), statusInterval/2)
	defer cancel()
	return s.cfg.StatusExtra(ctx)
}
