package mcp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/mcp"
)

const listTools = `{"jsonrpc":"2.0","id":"list-1","method":"tools/list"}`

func callUpper(id string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"upper","arguments":{"text":"abc"}}}`
}

func TestStreamableStatusCodes(t *testing.T) {
	h := start(t, options{})
	sid := h.initialize(t, "upper")
	session := map[string]string{"Mcp-Session-Id": sid}
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
		code   int // JSON-RPC error code expected in the body; 0: none
	}{
		{"accept without event-stream", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Accept": "application/json"}, 406, mcp.CodeBadRequest},
		{"accept without json", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Accept": "text/event-stream"}, 406, mcp.CodeBadRequest},
		{"no accept", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Accept": ""}, 406, mcp.CodeBadRequest},
		{"text/plain", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Content-Type": "text/plain"}, 415, mcp.CodeBadRequest},
		{"batch", "/mcp/upper", "[" + listTools + "]", session, 400, mcp.CodeInvalidRequest},
		{"parse error", "/mcp/upper", `{"jsonrpc":`, session, 400, mcp.CodeParseError},
		{"not JSON-RPC 2.0", "/mcp/upper", `{"id":1,"method":"ping"}`, session, 400, mcp.CodeInvalidRequest},
		{"missing session", "/mcp/upper", listTools, nil, 400, mcp.CodeBadRequest},
		{"unknown session", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": strings.Repeat("0", 32)}, 404, mcp.CodeSessionNotFound},
		{"session of another function", "/mcp/flaky-500", listTools, session, 404, mcp.CodeSessionNotFound},
		{"bad protocol version", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "latest"}, 400, mcp.CodeBadRequest},
		{"other protocol version", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-03-26"}, 400, mcp.CodeBadRequest},
		{"function not MCP", "/mcp/plain", initialize, nil, 404, mcp.CodeBadRequest},
		{"no such function", "/mcp/nope", initialize, nil, 404, mcp.CodeBadRequest},
		{"notification", "/mcp/upper", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session, 202, 0},
		{"response", "/mcp/upper", `{"jsonrpc":"2.0","id":7,"result":{}}`, session, 202, 0},
		{"request", "/mcp/upper", listTools, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"}, 200, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.post(t, tc.path, tc.body, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 202 {
				if len(body) != 0 {
					t.Fatalf("202 with a body: %q", body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			r := decodeReply(t, body)
			switch {
			case tc.code == 0 && r.Error != nil:
				t.Fatalf("error %+v", r.Error)
			case tc.code != 0 && (r.Error == nil || r.Error.Code != tc.code):
				t.Fatalf("body %s, want error %d", body, tc.code)
			}
		})
	}
}

func TestStreamableRequest(t *testing.T) {
	h := start(t, options{})
	resp, body := h.post(t, "/mcp/upper", initialize, map[string]string{"Origin": "https://inspector.example"})
	sid := resp.Header.Get("Mcp-Session-Id")
	if len(sid) != 32 || strings.Trim(sid, "0123456789abcdef") != "" {
		t.Fatalf("session ID %q", sid)
	}
	if got := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Mcp-Session-Id") {
		t.Errorf("Access-Control-Expose-Headers %q", got)
	}
	var init struct {
		Result struct{ ProtocolVersion string }
	}
	if err := json.Unmarshal(body, &init); err != nil || init.Result.ProtocolVersion != "2025-06-18" {
		t.Fatalf("initialize: %s", body)
	}
	s, err := h.sessions.Get(t.Context(), sid)
	if err != nil || s.Function != "upper" || s.Transport != mcp.TransportStreamable || s.ProtocolVersion != "2025-06-18" {
		t.Fatalf("session %+v, %v", s, err)
	}

	resp, body = h.post(t, "/mcp/upper", callUpper("42"), map[string]string{"Mcp-Session-Id": sid, "Authorization": "Bearer client-token"})
	r := decodeReply(t, body)
	if resp.StatusCode != 200 || string(r.ID) != "42" || !strings.Contains(string(r.Result), `"text":"ABC"`) {
		t.Fatalf("tools/call: %d %s", resp.StatusCode, body)
	}
	// What the function saw: the session headers, the client's Authorization, a trace.
	got := h.fns.lastHeaders()
	for k, want := range map[string]string{
		"X-Mcp-Session-Id":     sid,
		"X-Mcp-Transport":      "streamable-http",
		"Mcp-Protocol-Version": "2025-06-18",
		"Authorization":        "Bearer client-token",
		"X-Client-Id":          "mcp:" + sid,
		"Content-Type":         "application/json",
	} {
		if got.Get(k) != want {
			t.Errorf("function got %s %q, want %q", k, got.Get(k), want)
		}
	}
	if got.Get("Traceparent") == "" {
		t.Error("function got no traceparent")
	}

	// Preflight allows the MCP headers.
	req, _ := http.NewRequest(http.MethodOptions, h.url+"/mcp/upper", nil)
	req.Header.Set("Origin", "https://inspector.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "mcp-session-id, mcp-protocol-version, content-type")
	resp, _ = h.do(t, req, nil)
	allowed := resp.Header.Get("Access-Control-Allow-Headers")
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(allowed, "Mcp-Session-Id") || !strings.Contains(allowed, "Mcp-Protocol-Version") ||
		resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestDeletedSession(t *testing.T) {
	h := start(t, options{})
	sid := h.initialize(t, "upper")
	session := map[string]string{"Mcp-Session-Id": sid}
	del := func() int {
		req, _ := http.NewRequest(http.MethodDelete, h.url+"/mcp/upper", nil)
		resp, _ := h.do(t, req, session)
		return resp.StatusCode
	}
	if st := del(); st != http.StatusNoContent {
		t.Fatalf("DELETE: %d", st)
	}
	resp, body := h.post(t, "/mcp/upper", listTools, session)
	if resp.StatusCode != http.StatusNotFound || decodeReply(t, body).Error.Code != mcp.CodeSessionNotFound {
		t.Fatalf("POST after DELETE: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/upper", nil)
	req.Header.Set("Accept", "text/event-stream")
	if resp, _ := h.do(t, req, session); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET after DELETE: %d", resp.StatusCode)
	}
	if st := del(); st != http.StatusNotFound {
		t.Fatalf("second DELETE: %d", st)
	}
	req, _ = http.NewRequest(http.MethodDelete, h.url+"/mcp/upper", nil)
	if resp, _ := h.do(t, req, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("DELETE without a session: %d", resp.StatusCode)
	}
}

// TestListeningStream: GET holds the session's stream; what is published to mcp:<id> reaches it, and a
// reconnect with Last-Event-ID gets what it missed.
func TestListeningStream(t *testing.T) {
	h := start(t, options{})
	sid := h.initialize(t, "upper")
	get := func(lastEventID string) *sseStream {
		req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/upper", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		return h.openStream(t, req)
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/upper", nil)
	if resp, _ := h.do(t, req, map[string]string{"Mcp-Session-Id": sid}); resp.StatusCode != http.StatusNotAcceptable {
		t.Fatalf("GET without Accept: %d", resp.StatusCode)
	}

	s := get("")
	testutil.WaitFor(t, "the stream", func() bool { return h.srv.Stats().ClientStreams == 1 })
	note := func(n int) []byte {
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":%d}}`, n)
	}
	if _, err := h.srv.PublishToClient(t.Context(), mcp.StreamKey(sid), "message", note(1)); err != nil {
		t.Fatal(err)
	}
	ev := s.next(t, "message")
	if ev.data != string(note(1)) || ev.id == "" {
		t.Fatalf("event %+v", ev)
	}
	s.resp.Body.Close()
	testutil.WaitFor(t, "the stream to close", func() bool { return h.srv.Stats().ClientStreams == 0 })
	if _, err := h.srv.PublishToClient(t.Context(), mcp.StreamKey(sid), "message", note(2)); err != nil {
		t.Fatal(err)
	}
	if ev := get(ev.id).next(t, "message"); ev.data != string(note(2)) {
		t.Fatalf("resumed event %+v", ev)
	}
}

func TestSSETransport(t *testing.T) {
	h := start(t, options{})
	s, endpoint := h.openSSE(t, "upper")
	sid := strings.TrimPrefix(endpoint, "/mcp/upper/messages?sessionId=")
	if sess, err := h.sessions.Get(t.Context(), sid); err != nil || sess.Transport != mcp.TransportSSE || sess.Function != "upper" {
		t.Fatalf("session %+v, %v", sess, err)
	}
	for i, body := range []string{initialize, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, callUpper(`"call-1"`)} {
		// No Accept or Mcp-* header: the HTTP+SSE transport has none.
		req, _ := http.NewRequest(http.MethodPost, h.url+endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, b := h.do(t, req, nil)
		if resp.StatusCode != http.StatusAccepted || len(b) != 0 {
			t.Fatalf("message %d: %d %q", i, resp.StatusCode, b)
		}
	}
	// Replies come as message events, one JSON object on one line; the notification gets none.
	got := map[string]string{}
	for range 2 {
		ev := s.next(t, "message")
		r := decodeReply(t, []byte(ev.data))
		got[string(r.ID)] = string(r.Result)
	}
	if !strings.Contains(got["1"], `"protocolVersion":"2025-06-18"`) || !strings.Contains(got[`"call-1"`], `"text":"ABC"`) {
		t.Fatalf("replies %v", got)
	}
	if hd := h.fns.lastHeaders(); hd.Get("X-Mcp-Transport") != "sse" || hd.Get("X-Mcp-Session-Id") != sid || hd.Get("Mcp-Protocol-Version") != "2024-11-05" {
		t.Fatalf("function headers %v", hd)
	}

	// Any node may take the POST: the session is in the store, not in this node's memory of the GET.
	other := "0123456789abcdef0123456789abcdef"
	if err := h.sessions.Create(t.Context(), mcp.Session{ID: other, Function: "upper", Transport: mcp.TransportSSE}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		body   string
		status int
	}{
		{"/mcp/upper/messages?sessionId=" + other, listTools, 202},
		{"/mcp/upper/messages", listTools, 400},
		{"/mcp/upper/messages?sessionId=" + strings.Repeat("f", 32), listTools, 404},
		{"/mcp/flaky-500/messages?sessionId=" + sid, listTools, 404},
		{endpoint, "[" + listTools + "]", 400},
		{endpoint, "{", 400},
		{"/mcp/plain/messages?sessionId=" + sid, listTools, 404},
	} {
		resp, body := h.post(t, tc.path, tc.body, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("POST %s %s: %d, want %d: %s", tc.path, tc.body, resp.StatusCode, tc.status, body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/nope/sse", nil)
	if resp, _ := h.do(t, req, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /mcp/nope/sse: %d", resp.StatusCode)
	}
}

// TestFailures: a function that fails or hangs answers a request with -32603 and the request's id, on
// both transports, within the function's timeout; notifications it refuses are not 202.
func TestFailures(t *testing.T) {
	h := start(t, options{})
	for _, tc := range []struct {
		fn    string
		calls int64 // tools/call requests the function gets (retries)
	}{
		{"flaky-500", 1}, // 500 is not retried
		{"flaky-503", 1}, // 503 is, but tools/call of a function not idempotent is tried once
		{"flaky-503-idempotent", 3},
		{"flaky-202", 1}, // 202 to a request is no answer
		{"flaky-hang", 1},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			check := func(t *testing.T, reply []byte, id string, took time.Duration) {
				t.Helper()
				r := decodeReply(t, reply)
				if r.Error == nil || r.Error.Code != mcp.CodeInternalError || string(r.ID) != id {
					t.Fatalf("reply %s, want error -32603 with id %s", reply, id)
				}
				if took > 2*time.Second {
					t.Fatalf("answered after %v", took)
				}
			}
			before := h.fns.calls.Load()
			sid := h.initialize(t, tc.fn) // initialize works: only tools/call misbehaves
			t0 := time.Now()
			resp, body := h.post(t, "/mcp/"+tc.fn, callUpper("9"), map[string]string{"Mcp-Session-Id": sid})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			check(t, body, "9", time.Since(t0))
			t.Logf("streamable: %s", body)

			s, endpoint := h.openSSE(t, tc.fn)
			t0 = time.Now()
			if resp, _ := h.post(t, endpoint, callUpper(`"x-9"`), nil); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST: %d", resp.StatusCode)
			}
			check(t, []byte(s.next(t, "message").data), `"x-9"`, time.Since(t0))
			if n := h.fns.calls.Load() - before; n != 2*tc.calls {
				t.Errorf("the function got %d tools/call requests, want %d", n, 2*tc.calls)
			}
		})
	}
	t.Run("hang timeout", func(t *testing.T) {
		sid := h.initialize(t, "flaky-hang")
		t0 := time.Now()
		_, body := h.post(t, "/mcp/flaky-hang", callUpper("1"), map[string]string{"Mcp-Session-Id": sid})
		took := time.Since(t0)
		if took < 250*time.Millisecond || took > time.Second {
			t.Fatalf("answered after %v, want about the 300ms timeout: %s", took, body)
		}
		if r := decodeReply(t, body); !strings.Contains(string(r.Error.Data), `"code":"timeout"`) {
			t.Fatalf("reply %s", body)
		}
	})
}

// TestSSESessionEndsWithStream checks that an HTTP+SSE session ends when its stream does: later POSTs
// to its endpoint get 404, and the store forgets it.
func TestSSESessionEndsWithStream(t *testing.T) {
	h := start(t, options{})
	s, endpoint := h.openSSE(t, "upper")
	sid := strings.TrimPrefix(endpoint, "/mcp/upper/messages?sessionId=")
	if _, err := h.sessions.Get(t.Context(), sid); err != nil {
		t.Fatalf("session while the stream is open: %v", err)
	}
	s.resp.Body.Close()
	testutil.WaitFor(t, "the session to end with its stream", func() bool {
		_, err := h.sessions.Get(t.Context(), sid)
		return errors.Is(err, mcp.ErrSessionNotFound)
	})
	req, _ := http.NewRequest(http.MethodPost, h.url+endpoint, strings.NewReader(initialize))
	req.Header.Set("Content-Type", "application/json")
	if resp, b := h.do(t, req, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST after the stream ended: %d %s; want 404", resp.StatusCode, b)
	}
}

// TestOriginChecked refuses browser requests from origins the edge does not allow, on both transports
// (the MCP spec's defence against DNS rebinding); allowed origins and non-browser clients pass.
func TestOriginChecked(t *testing.T) {
	h := start(t, options{origins: []string{"https://app.example"}})
	for _, c := range []struct {
		origin string
		want   int
	}{{"https://evil.example", http.StatusForbidden}, {"https://app.example", http.StatusOK}, {"", http.StatusOK}} {
		resp, b := h.post(t, "/mcp/upper", initialize, map[string]string{"Origin": c.origin})
		if resp.StatusCode != c.want {
			t.Errorf("initialize from origin %q: %d %s; want %d", c.origin, resp.StatusCode, b, c.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/upper/sse", nil)
	req.Header.Set("Origin", "https://evil.example")
	if resp, _ := h.do(t, req, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("HTTP+SSE stream from a foreign origin: %d; want 403", resp.StatusCode)
	}
}

// TestDeleteEndsListeningStream checks that deleting a Streamable HTTP session ends its open listening
// stream.
func TestDeleteEndsListeningStream(t *testing.T) {
	h := start(t, options{})
	sid := h.initialize(t, "upper")
	req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/upper", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	s := h.openStream(t, req)
	testutil.WaitFor(t, "the stream", func() bool { return h.srv.Stats().ClientStreams == 1 })
	del, _ := http.NewRequest(http.MethodDelete, h.url+"/mcp/upper", nil)
	if resp, b := h.do(t, del, map[string]string{"Mcp-Session-Id": sid}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, b)
	}
	rest, err := io.ReadAll(s.r) // ends when the edge closes the stream
	if err != nil || !strings.Contains(string(rest), ": stream ended") {
		t.Fatalf("stream after DELETE: %q, %v; want it to end", rest, err)
	}
	testutil.WaitFor(t, "the stream to be gone", func() bool { return h.srv.Stats().ClientStreams == 0 })
}
