package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
)

// routes registers the edge's own endpoints. Stream paths are here too, for stream requests that arrive
// on a keep-alive API connection; fasthttp hands the connection back by hijacking.
func (s *Server) routes() {
	r := s.router
	r.GET("/sse/{clientId}", s.hijackStream)
	r.POST("/sse/{clientId}/token", s.handleTokenRefresh)
	r.GET("/subscribe/{topic:*}", s.hijackStream)
	r.POST("/publish/{topic:*}", s.handlePublish)
	r.POST("/clients/{clientId}/events", s.handleClientEvent)
	r.GET("/admin/health", s.handleHealth)
	r.GET("/admin/connections", s.handleConnections)
	s.statusRoutes()
	r.GlobalOPTIONS = s.handlePreflight
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		if ctx.IsGet() && string(ctx.Path()) == "/admin" {
			redirectToStatusPage(ctx)
			return
		}
		s.fail(ctx, fasthttp.StatusNotFound, "not_found", "no route for "+string(ctx.Method())+" "+string(ctx.Path()))
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", string(ctx.Method())+" not allowed on "+string(ctx.Path()))
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, v any) {
		s.log.Error("api handler panic", "path", string(ctx.Path()), "panic", v)
		s.fail(ctx, fasthttp.StatusInternalServerError, "internal", "internal error")
	}
}

func (s *Server) hijackStream(ctx *fasthttp.RequestCtx) {
	header := func(name string) string { return string(ctx.Request.Header.Peek(name)) }
	req, aerr := s.parseStreamRequest(string(ctx.Method()), string(ctx.Path()), string(ctx.URI().QueryString()), header)
	if aerr != nil {
		s.fail(ctx, aerr.status, aerr.code, aerr.msg)
		return
	}
	s.hijack(ctx, req)
}

// hijack takes the connection of ctx back from fasthttp and holds it as req's stream.
func (s *Server) hijack(ctx *fasthttp.RequestCtx, req streamRequest) {
	ac, ok := ctx.Conn().(*apiConn)
	if !ok {
		req.refused()
		s.fail(ctx, fasthttp.StatusInternalServerError, "internal", "stream on a foreign connection")
		return
	}
	ac.state.mode.Store(modeStream)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(net.Conn) { s.openStream(ac.Connection, req) })
}

// HoldStream answers ctx with an event stream held like GET /sse/{key}: events published to client key
// (PublishToClient) reach it on whichever node it is held, and Last-Event-ID resumes it unless
// spec.NoResume. spec.First, when set, is its first event. Other packages (MCP) use it for the streams of their own routes; they do
// their own authorization first.
func (s *Server) HoldStream(ctx *fasthttp.RequestCtx, spec StreamSpec) {
	req, aerr := heldStream(spec, func(name string) string { return string(ctx.Request.Header.Peek(name)) })
	if aerr != nil {
		req.refused()
		s.fail(ctx, aerr.status, aerr.code, aerr.msg)
		return
	}
	s.hijack(ctx, req)
}

// publishBody is the body of POST /publish/{topic} and POST /clients/{id}/events.
type publishBody struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    string          `json:"id"`
}

// decodeEvent reads a publish body. A JSON string in data is sent as its text; any other JSON value is
// sent compacted to one line.
func decodeEvent(body []byte) (fanout.Event, *apiError) {
	var pb publishBody
	if err := json.Unmarshal(body, &pb); err != nil {
		return fanout.Event{}, &apiError{fasthttp.StatusBadRequest, "bad_json", "body must be a JSON object: " + err.Error()}
	}
	if len(pb.Data) == 0 {
		return fanout.Event{}, &apiError{fasthttp.StatusBadRequest, "missing_data", "field data is required"}
	}
	ev := fanout.Event{ID: pb.ID, Name: pb.Event}
	if pb.Data[0] == '"' {
		var text string
		if err := json.Unmarshal(pb.Data, &text); err != nil {
			return ev, &apiError{fasthttp.StatusBadRequest, "bad_json", "data: " + err.Error()}
		}
		if text == "" {
			return ev, &apiError{fasthttp.StatusBadRequest, "empty_data", "data must not be empty: EventSource drops events without data"}
		}
		ev.Data = []byte(text)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, pb.Data); err != nil {
			return ev, &apiError{fasthttp.StatusBadRequest, "bad_json", "data: " + err.Error()}
		}
		ev.Data = buf.Bytes()
	}
	return ev, nil // its name and ID are checked by the hub, which answers bad_event
}

func (s *Server) handlePublish(ctx *fasthttp.RequestCtx) {
	topic, err := fanout.ParseTopic(userValue(ctx, "topic"))
	if err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, "bad_topic", err.Error())
		return
	}
	if reservedTopic(topic) {
		s.fail(ctx, fasthttp.StatusForbidden, "reserved_topic", "topics under "+ReservedTopicPrefix+" are the edge's own")
		return
	}
	s.publish(ctx, s.topics, topic)
}

func (s *Server) handleClientEvent(ctx *fasthttp.RequestCtx) {
	id := userValue(ctx, "clientId")
	if !validClientID(id) {
		s.fail(ctx, fasthttp.StatusBadRequest, "bad_client_id", clientid.Rule)
		return
	}
	s.publish(ctx, s.clients, id)
}

// publish answers POST /publish/{topic} (hub s.topics) and POST /clients/{id}/events (s.clients) under
// a "publish" span that continues the caller's trace (W3C traceparent) and reaches the engine, so
// a shared publish's Redis call and its delivery on every node join that trace.
func (s *Server) publish(ctx *fasthttp.RequestCtx, hub *fanout.Hub, key string) {
	kind, keyAttr := "topic", "sseedge.topic"
	if hub == s.clients {
		kind, keyAttr = "client", "sseedge.client_id"
	}
	// Not the RequestCtx as parent: its Done channel is not a context package one, so every timeout
	// derived from it below would cost a goroutine.
	tctx := otel.GetTextMapPropagator().Extract(context.Background(), metrics.RequestHeaderCarrier{Header: &ctx.Request.Header})
	tctx, span := otel.Tracer("sseedge/edge").Start(tctx, "publish", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("sseedge.stream", kind), attribute.String(keyAttr, key)))
	defer span.End()
	fail := func(status int, code, msg string) {
		span.SetStatus(codes.Error, msg)
		span.SetAttributes(attribute.String("error.type", code), attribute.Int("http.response.status_code", status))
		s.fail(ctx, status, code, msg)
	}

	if s.draining.Load() {
		fail(fasthttp.StatusServiceUnavailable, "draining", "node is shutting down")
		return
	}
	ev, aerr := decodeEvent(ctx.PostBody())
	if aerr != nil {
		fail(aerr.status, aerr.code, aerr.msg)
		return
	}
	// A publisher that got no answer, or a 503 with Sseedge-Applied: unknown, retries with the same key.
	ev.IdempotencyKey = string(ctx.Request.Header.Peek("Idempotency-Key"))
	id, delivered, err := hub.Publish(tctx, key, ev)
	if errors.Is(err, fanout.ErrUnavailable) {
		applied := "no" // the engine's deadline makes a 503 final, but for a connection lost in flight
		if errors.Is(err, fanout.ErrOutcomeUnknown) {
			applied = "unknown"
		}
		ctx.Response.Header.Set("Sseedge-Applied", applied)
		span.SetAttributes(attribute.String("sseedge.applied", applied))
		fail(fasthttp.StatusServiceUnavailable, "state_unavailable", err.Error())
		return
	}
	if errors.Is(err, fanout.ErrIdempotencyConflict) {
		s.cfg.Metrics.IdempotentPublish(true)
		fail(fasthttp.StatusUnprocessableEntity, "idempotency_key_reused", err.Error())
		return
	}
	if delivered == fanout.Replayed { // a retry: the first publish's ID, nothing published again
		s.cfg.Metrics.IdempotentPublish(false)
		span.SetAttributes(attribute.String("sseedge.event_id", id), attribute.Bool("sseedge.replayed", true))
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
		httpjson.Write(ctx, fasthttp.StatusOK, map[string]any{"id": id})
		return
	}
	if errors.Is(err, fanout.ErrFrameTooLarge) {
		fail(fasthttp.StatusRequestEntityTooLarge, "event_too_large", err.Error()+" (MAX_QUEUE_BYTES); each line of data costs 7 bytes more framed")
		return
	}
	if err != nil {
		fail(fasthttp.StatusBadRequest, "bad_event", err.Error())
		return
	}
	s.cfg.Metrics.EventPublished()
	s.published.Add(1)
	span.SetAttributes(attribute.String("sseedge.event_id", id))
	body := map[string]any{"id": id}
	if delivered >= 0 { // known only when the node is alone
		body["delivered"] = delivered
		span.SetAttributes(attribute.Int("sseedge.delivered", delivered))
	}
	httpjson.Write(ctx, fasthttp.StatusOK, body)
}

// PublishToClient sends an event to a client's personal stream (and its history, for resume). Other
// packages (the function invoker, MCP) deliver results through it; ctx bounds the engine's call and
// carries the caller's trace, so an async result's publish joins the invocation's trace.
func (s *Server) PublishToClient(ctx context.Context, clientID, event string, data []byte) (string, error) {
	if err := clientid.Check(clientID); err != nil {
		return "", fmt.Errorf("edge: %w", err)
	}
	id, _, err := s.clients.Publish(ctx, clientID, fanout.Event{Name: event, Data: data})
	if err == nil {
		s.cfg.Metrics.EventPublished()
		s.published.Add(1)
	}
	return id, err
}

// EndClientStreams ends the streams of client key on every node, each once what it has queued is
// written (MCP ends a deleted session's listening stream so).
func (s *Server) EndClientStreams(ctx context.Context, key string) error {
	return s.clients.End(ctx, key)
}

func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	status, code := "ok", fasthttp.StatusOK
	if s.draining.Load() {
		status, code = "draining", fasthttp.StatusServiceUnavailable
	}
	st := s.Stats()
	body := map[string]any{
		"status":         status,
		"node_id":        s.cfg.NodeID,
		"started_at":     s.started.UTC().Format(time.RFC3339),
		"uptime_seconds": int64(time.Since(s.started).Seconds()),
		"streams": map[string]int64{
			"sse":   st.ClientStreams,
			"topic": st.TopicStreams,
			"total": st.ClientStreams + st.TopicStreams,
		},
	}
	if s.cfg.HealthExtra != nil {
		for k, v := range s.cfg.HealthExtra(ctx) {
			body[k] = v
		}
		if body["status"] != status { // a part reports the node unfit (its bus is down): drain it
			code = fasthttp.StatusServiceUnavailable
		}
	}
	httpjson.Write(ctx, code, body)
}

// connectionInfo is one row of GET /admin/connections.
type connectionInfo struct {
	ID         uint64            `json:"id"`
	Kind       string            `json:"kind"`
	ClientID   string            `json:"client_id,omitempty"`
	Topic      string            `json:"topic,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	RemoteAddr string            `json:"remote_addr"`
	OpenedAt   string            `json:"opened_at"`
	AgeSeconds float64           `json:"age_seconds"`
}

// handleConnections lists streams by ascending ID: ?kind=sse|topic, ?limit= (default 100, at most 1000),
// ?after=<id> for the next page.
func (s *Server) handleConnections(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	limit := 100
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 1000 {
			s.fail(ctx, fasthttp.StatusBadRequest, "bad_limit", "limit must be 1-1000")
			return
		}
		limit = n
	}
	var after uint64
	if v := args.Peek("after"); len(v) > 0 {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, "bad_after", "after must be a connection ID")
			return
		}
		after = n
	}
	kind := string(args.Peek("kind"))
	if kind != "" && kind != "sse" && kind != "topic" {
		s.fail(ctx, fasthttp.StatusBadRequest, "bad_kind", "kind must be sse or topic")
		return
	}
	all := s.conns.snapshot()
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	now := time.Now()
	rows := make([]connectionInfo, 0, min(limit, len(all)))
	var next uint64
	for _, st := range all {
		if st.id <= after || (kind != "" && st.kind.String() != kind) {
			continue
		}
		if len(rows) == limit {
			next = rows[len(rows)-1].ID
			break
		}
		opened := time.Unix(int64(st.opened), 0)
		row := connectionInfo{ID: st.id, Kind: st.kind.String(), Metadata: st.meta, RemoteAddr: st.conn.RemoteAddr().String(),
			OpenedAt: opened.UTC().Format(time.RFC3339), AgeSeconds: now.Sub(opened).Seconds()}
		if st.kind == kindTopic {
			row.Topic = st.key
		} else {
			row.ClientID = st.key
		}
		rows = append(rows, row)
	}
	stats := s.Stats()
	body := map[string]any{
		"node_id":     s.cfg.NodeID,
		"counts":      map[string]int64{"sse": stats.ClientStreams, "topic": stats.TopicStreams, "total": stats.ClientStreams + stats.TopicStreams},
		"connections": rows,
	}
	if next != 0 {
		body["next_after"] = next
	}
	if s.cfg.Directory != nil {
		nodes, err := s.cfg.Directory.NodeCounts(ctx)
		if err != nil {
			body["nodes_error"] = err.Error()
		} else {
			body["nodes"] = nodes
		}
	}
	httpjson.Write(ctx, fasthttp.StatusOK, body)
}

// cors adds CORS headers for allowed origins to every API response.
func (s *Server) cors(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		origin := string(ctx.Request.Header.Peek("Origin"))
		if origin != "" && s.originAllowed(origin) {
			h := &ctx.Response.Header
			if s.corsAny() {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Add("Vary", "Origin")
			}
		}
		next(ctx)
	}
}

func (s *Server) handlePreflight(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Authorization, X-User-ID")
	h.Set("Access-Control-Max-Age", "600")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// fastError answers requests fasthttp could not parse.
func (s *Server) fastError(ctx *fasthttp.RequestCtx, err error) {
	defer func() { s.cfg.Metrics.RequestRejected(rejectReason(ctx.Response.StatusCode())) }()
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.fail(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body larger than "+strconv.Itoa(s.cfg.MaxBodyBytes)+" bytes")
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		s.fail(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "head_too_large", "request head too large")
	default:
		s.fail(ctx, fasthttp.StatusBadRequest, "bad_request", redactHead(err.Error()))
	}
}

// redactHead cuts the copy of the request head that fasthttp's parse errors carry ("buffer size=N,
// contents: ..."): it holds Authorization, X-Authorization and ?token= as they were sent.
func redactHead(msg string) string {
	if i := strings.Index(msg, "buffer size="); i >= 0 {
		return strings.TrimRight(msg[:i], ": ,") + " (request head not shown)"
	}
	return msg
}

func userValue(ctx *fasthttp.RequestCtx, name string) string {
	v, _ := ctx.UserValue(name).(string)
	return v
}
