package edge

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
)

// Limits on what a stream request may carry.
const (
	maxMetaFields    = 16
	maxMetaValueSize = 256
)

// streamRequest is a validated stream request, from the edge's own head parser or from fasthttp.
type streamRequest struct {
	kind        streamKind
	key         string
	resume      bool
	lastEventID string
	origin      string
	meta        map[string]string
	first       []byte // first event of a stream held for another package; nil: "connected" on client streams
	onClose     func() // run when a stream held for another package ends, or is refused after its opener said yes
	exp         uint32 // unix seconds after which the stream's token is refused (StreamAuth.Deadline); 0: none
}

// refused runs onClose for a stream that will never be held: whoever opened it (MCP made a session for
// it) learns it is over, just as when a held stream ends.
func (r *streamRequest) refused() {
	if r.onClose != nil {
		go r.onClose()
	}
}

// apiError is a refusal with its status and stable code.
type apiError struct {
	status int
	code   string
	msg    string
}

// parseStreamRequest validates a stream request from its method, canonical path (canonicalPath), query
// and a header lookup.
func (s *Server) parseStreamRequest(method, path, rawQuery string, header func(string) string) (streamRequest, *apiError) {
	var req streamRequest
	if method != "GET" {
		return req, &apiError{fasthttp.StatusMethodNotAllowed, "method_not_allowed", "streams are opened with GET"}
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return req, &apiError{fasthttp.StatusBadRequest, "bad_query", "malformed query string"}
	}
	switch {
	case strings.HasPrefix(path, "/sse/"):
		req.kind = kindClient
		id := path[len("/sse/"):] // path is canonical: decoded once already
		if !validClientID(id) {
			return req, &apiError{fasthttp.StatusBadRequest, "bad_client_id", clientid.Rule}
		}
		req.key = id
		if req.meta, err = streamMeta(query, header("X-User-ID")); err != nil {
			return req, &apiError{fasthttp.StatusBadRequest, "bad_metadata", err.Error()}
		}
	case strings.HasPrefix(path, "/subscribe/"):
		req.kind = kindTopic
		if req.key, err = fanout.ParseTopic(path[len("/subscribe"):]); err != nil {
			return req, &apiError{fasthttp.StatusBadRequest, "bad_topic", err.Error()}
		}
	default:
		return req, &apiError{fasthttp.StatusNotFound, "not_found", "no such stream"}
	}
	req.lastEventID = header("Last-Event-ID")
	if req.lastEventID == "" {
		req.lastEventID = query.Get("lastEventId")
	}
	req.resume = req.lastEventID != ""
	req.origin = header("Origin")
	if req.origin != "" && !s.originAllowed(req.origin) {
		return req, &apiError{fasthttp.StatusForbidden, "origin_not_allowed", "origin not allowed"}
	}
	if aerr := s.authorizeStream(&req, auth.TokenFrom([]byte(header("X-Authorization")), []byte(query.Get("token")))); aerr != nil {
		return req, aerr
	}
	return req, nil
}

// rejectReason maps a refusal's status to its metric label.
func rejectReason(status int) metrics.RejectReason {
	switch status {
	case fasthttp.StatusUnauthorized:
		return metrics.RejectUnauthorized
	case fasthttp.StatusForbidden:
		return metrics.RejectForbidden
	case fasthttp.StatusNotFound:
		return metrics.RejectNotFound
	case fasthttp.StatusTooManyRequests:
		return metrics.RejectRateLimited
	case fasthttp.StatusRequestEntityTooLarge, fasthttp.StatusRequestHeaderFieldsTooLarge:
		return metrics.RejectTooLarge
	}
	return metrics.RejectBadRequest
}

// fail answers an API request with a JSON error; countRejections counts it.
func (s *Server) fail(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	httpjson.WriteError(ctx, status, code, msg)
}

// countRejections counts every 4xx answer of the API, whichever package's handler gave it.
func (s *Server) countRejections(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		next(ctx)
		if status := ctx.Response.StatusCode(); status >= 400 && status < 500 {
			s.cfg.Metrics.RequestRejected(rejectReason(status))
		}
	}
}

func validClientID(id string) bool { return clientid.Check(id) == nil }

// streamMeta turns query parameters (but for the resume and auth ones) and X-User-ID into metadata.
func streamMeta(query url.Values, userID string) (map[string]string, error) {
	var meta map[string]string
	put := func(k, v string) error {
		if len(v) > maxMetaValueSize || len(k) > maxMetaValueSize {
			return fmt.Errorf("metadata %q longer than %d bytes", k, maxMetaValueSize)
		}
		if meta == nil {
			meta = make(map[string]string, len(query)+1)
		}
		if len(meta) == maxMetaFields {
			return fmt.Errorf("more than %d metadata fields", maxMetaFields)
		}
		meta[k] = v
		return nil
	}
	for k, vs := range query {
		if k == "lastEventId" || k == "token" {
			continue
		}
		if err := put(k, vs[0]); err != nil {
			return nil, err
		}
	}
	if userID != "" {
		if err := put("user_id", userID); err != nil {
			return nil, err
		}
	}
	return meta, nil
}

// OriginAllowed reports whether CORS_ORIGINS allows origin; other packages use it to refuse requests
// from other origins (MCP's defence against DNS rebinding).
func (s *Server) OriginAllowed(origin string) bool { return s.originAllowed(origin) }

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

// corsHeaders appends the CORS response headers for origin, or nothing if it is empty or not allowed.
func (s *Server) corsHeaders(b []byte, origin string) []byte {
	if origin == "" || !s.originAllowed(origin) {
		return b
	}
	if s.corsAny() {
		return append(b, "Access-Control-Allow-Origin: *\r\n"...)
	}
	b = append(b, "Access-Control-Allow-Origin: "...)
	b = append(b, origin...)
	return append(b, "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"...)
}

// streamHead is the response head of a stream followed by its retry: hint. The body is delimited by
// the connection's close, so frames go out as they are, with no chunk framing.
func (s *Server) streamHead(origin string) *fanout.Frame {
	// Most streams share one of two prebuilt heads (no Origin, or any origin under CORS "*"): frames are
	// immutable, and a stream that connects costs no head of its own.
	if origin == "" && s.sharedHeads[0] != nil {
		return s.sharedHeads[0]
	}
	if s.corsAny() && s.sharedHeads[1] != nil {
		return s.sharedHeads[1]
	}
	return s.buildStreamHead(origin)
}

func (s *Server) corsAny() bool { return len(s.cfg.CORSOrigins) == 1 && s.cfg.CORSOrigins[0] == "*" }

func (s *Server) buildStreamHead(origin string) *fanout.Frame {
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"...)
	b = s.corsHeaders(b, origin)
	b = append(b, "\r\nretry: "...)
	b = strconv.AppendInt(b, s.cfg.Retry.Milliseconds(), 10)
	return &fanout.Frame{Bytes: append(b, "\n\n"...)}
}

// connectedFrame is the first event of a client stream.
func (s *Server) connectedFrame(clientID string) *fanout.Frame {
	data, _ := json.Marshal(struct {
		ClientID    string `json:"client_id"`
		NodeID      string `json:"node_id"`
		ConnectedAt string `json:"connected_at"`
	}{clientID, s.cfg.NodeID, time.Now().UTC().Format(time.RFC3339Nano)})
	return &fanout.Frame{Bytes: fanout.AppendFrame(nil, "", "connected", data)}
}

// rejectRaw answers a request the edge read itself with a JSON error, then closes the connection.
func (s *Server) rejectRaw(conn netpoll.Connection, origin string, e *apiError) {
	s.cfg.Metrics.RequestRejected(rejectReason(e.status))
	body, _ := json.Marshal(map[string]string{"error": e.msg, "code": e.code})
	s.writeRaw(conn, origin, e.status, "application/json", body)
}

// writeRaw answers a request the edge read itself, then closes the connection.
func (s *Server) writeRaw(conn netpoll.Connection, origin string, status int, contentType string, body []byte) {
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, fasthttp.StatusMessage(status)...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = s.corsHeaders(b, origin)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	w := conn.Writer()
	if _, err := w.WriteBinary(b); err == nil {
		_ = w.Flush()
	}
	conn.Close()
}
