package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/transport"
)

// apiError is a refusal with its status and stable code.
type apiError struct {
	status int
	code   string
	msg    string
}

// wire builds the bytes the transport writes by itself: stream heads, its own events, and the answers
// to requests it read and refused.
type wire struct {
	cors             cors.Policy
	retry            time.Duration
	shutdownRetryMax time.Duration
	nodeID           string
	maxBody          int
	metrics          *metrics.Metrics
	// shared are the stream response heads without CORS headers and with the wildcard ones.
	shared [2]*fanout.Frame
}

func newWire(cfg Config) wire {
	w := wire{cors: cfg.CORS, retry: cfg.Retry, shutdownRetryMax: cfg.ShutdownRetryMax, nodeID: cfg.Node.ID(),
		maxBody: cfg.MaxBodyBytes, metrics: cfg.Metrics}
	w.shared[0] = w.buildStreamHead("")
	if w.cors.Any() {
		w.shared[1] = w.buildStreamHead("*")
	}
	return w
}

// streamHead is the response head of a stream followed by its retry: hint. The body is delimited by
// the connection's close, so frames go out as they are, with no chunk framing.
func (w *wire) streamHead(origin string) *fanout.Frame {
	// Most streams share one of two prebuilt heads (no Origin, or any origin under CORS "*"): frames are
	// immutable, and a stream that connects costs no head of its own.
	if origin == "" {
		return w.shared[0]
	}
	if w.cors.Any() {
		return w.shared[1]
	}
	return w.buildStreamHead(origin)
}

func (w *wire) buildStreamHead(origin string) *fanout.Frame {
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"...)
	b = w.cors.AppendHeaders(b, origin)
	b = append(b, "\r\nretry: "...)
	b = strconv.AppendInt(b, w.retry.Milliseconds(), 10)
	return &fanout.Frame{Bytes: append(b, "\n\n"...)}
}

// connected is the first event of a client stream.
func (w *wire) connected(clientID string) *fanout.Frame {
	data, _ := json.Marshal(struct {
		ClientID    string `json:"client_id"`
		NodeID      string `json:"node_id"`
		ConnectedAt string `json:"connected_at"`
	}{clientID, w.nodeID, time.Now().UTC().Format(time.RFC3339Nano)})
	return &fanout.Frame{Bytes: fanout.AppendFrame(nil, "", "connected", data)}
}

// goodbye is the last frame of a stream at shutdown: a jittered retry, so a fleet does not reconnect at
// once.
func (w *wire) goodbye(held bool) *fanout.Frame {
	ms := w.retry.Milliseconds() + rand.Int64N(max(1, w.shutdownRetryMax.Milliseconds()))
	b := make([]byte, 0, 96)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, '\n')
	if held { // other protocols' clients (MCP) take any event for theirs: say it in a comment
		return &fanout.Frame{Bytes: append(b, ": node shutting down\n\n"...)}
	}
	return &fanout.Frame{Bytes: fanout.AppendFrame(b, "", "shutdown", fmt.Appendf(nil, `{"reason":"node shutting down","retry_ms":%d}`, ms))}
}

// tokenExpired is the last event of a stream whose token expired, and the retry hint after it.
func (w *wire) tokenExpired(kind transport.Kind, key string, exp uint32) *fanout.Frame {
	body := struct {
		Reason    string `json:"reason"`
		ExpiredAt string `json:"expired_at"`
		ClientID  string `json:"client_id,omitempty"`
		Topic     string `json:"topic,omitempty"`
		Message   string `json:"message"`
	}{Reason: "token_expired", ExpiredAt: time.Unix(int64(exp), 0).UTC().Format(time.RFC3339),
		Message: "reconnect with a new token and Last-Event-ID; refresh a live stream before its token expires with POST /sse/{clientId}/token"}
	if kind == transport.Topic {
		body.Topic = key
	} else {
		body.ClientID = key
	}
	data, _ := json.Marshal(body) // strings always encode
	b := fanout.AppendFrame(nil, "", "token_expired", data)
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, w.retry.Milliseconds(), 10)
	return &fanout.Frame{Bytes: append(b, "\n\n"...)}
}

// reject answers a request the transport read itself with a JSON error, then closes the connection.
func (w *wire) reject(conn netpoll.Connection, origin string, e *apiError) {
	w.metrics.RequestRejected(metrics.RejectReasonOf(e.status))
	body, _ := json.Marshal(map[string]string{"error": e.msg, "code": e.code})
	w.write(conn, origin, e.status, "application/json", body)
}

// write answers a request the transport read itself, then closes the connection.
func (w *wire) write(conn netpoll.Connection, origin string, status int, contentType string, body []byte) {
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
	b = w.cors.AppendHeaders(b, origin)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	out := conn.Writer()
	if _, err := out.WriteBinary(b); err == nil {
		_ = out.Flush()
	}
	conn.Close()
}

// fastError answers requests fasthttp could not parse.
func (w *wire) fastError(ctx *fasthttp.RequestCtx, err error) {
	defer func() { w.metrics.RequestRejected(metrics.RejectReasonOf(ctx.Response.StatusCode())) }()
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		httpjson.WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body larger than "+strconv.Itoa(w.maxBody)+" bytes")
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		httpjson.WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "head_too_large", "request head too large")
	default:
		httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_request", redactHead(err.Error()))
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
