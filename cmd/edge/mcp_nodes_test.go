package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/mcp/mcpfunc"
	"github.com/sseedge/sseedge/registry/redisstore"
)

// mcpFunction is a stateless MCP server with one tool, upper.
func mcpFunction(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(&mcpfunc.Server{Name: "test", Version: "1", Tools: []mcpfunc.Tool{{
		Name:        "upper",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`),
		Call: func(_ context.Context, c mcpfunc.ToolCall) (string, error) {
			var args struct{ Text string }
			json.Unmarshal(c.Arguments, &args)
			return strings.ToUpper(args.Text), nil
		},
	}}})
	t.Cleanup(srv.Close)
	return srv
}

// mcpPost sends one JSON-RPC message and returns the status, the session header and the body.
func mcpPost(t *testing.T, url, session, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(raw)
}

// TestMCPSessionsAcrossNodes opens MCP sessions on one node and sends their messages to another: with
// Redis, the session is known everywhere and the replies reach the stream where it is held.
func TestMCPSessionsAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes")
	}
	eachRedis(t, func(t *testing.T, r redisUnderTest) {
		a := startNode(t, "node-a", "REDIS_ADDR="+r.addr)
		b := startNode(t, "node-b", "REDIS_ADDR="+r.addr)
		fn := mcpFunction(t)
		if code, out := request(t, "POST", a.url+"/admin/functions", fmt.Sprintf(`{"name":"upper","endpoint":"%s","mcp":true,"timeout":5}`, fn.URL)); code != 201 {
			t.Fatalf("register: %d %v", code, out)
		}

		// HTTP+SSE: the stream on A, the messages to B, the replies on A's stream.
		stream := subscribe(t, a.url+"/mcp/upper/sse", "")
		ev, _ := stream.next(t)
		if ev.Type != "endpoint" || !strings.Contains(ev.Data, "/mcp/upper/messages?sessionId=") {
			t.Fatalf("first event %+v", ev)
		}
		code, _, body := mcpPost(t, b.url+ev.Data, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		if code != 202 {
			t.Fatalf("initialize on B: %d %s", code, body)
		}
		// WHATWG: an event without an event: line is a "message" (go-sse reports its type as "").
		isMessage := func(typ string) bool { return typ == "" || typ == "message" }
		if ev, _ := stream.next(t); !isMessage(ev.Type) || !strings.Contains(ev.Data, `"id":1`) || !strings.Contains(ev.Data, `"serverInfo"`) {
			t.Fatalf("initialize reply on A's stream: %+v", ev)
		}
		mcpPost(t, b.url+ev.Data, "", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"upper","arguments":{"text":"across"}}}`)
		if ev, _ := stream.next(t); !isMessage(ev.Type) || !strings.Contains(ev.Data, "ACROSS") {
			t.Fatalf("tools/call reply on A's stream: %+v", ev)
		}

		// Streamable HTTP: initialize on A, call on B, delete on B, then A refuses the session too.
		code, session, body := mcpPost(t, a.url+"/mcp/upper", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		if code != 200 || session == "" {
			t.Fatalf("initialize on A: %d %q %s", code, session, body)
		}
		if code, _, body := mcpPost(t, b.url+"/mcp/upper", session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"upper","arguments":{"text":"streamable"}}}`); code != 200 || !strings.Contains(body, "STREAMABLE") {
			t.Fatalf("tools/call on B: %d %s", code, body)
		}
		// Its listening stream is held on A; deleting the session on B ends it.
		listen, _ := http.NewRequest("GET", a.url+"/mcp/upper", nil)
		listen.Header.Set("Accept", "text/event-stream")
		listen.Header.Set("Mcp-Session-Id", session)
		held, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(listen)
		if err != nil || held.StatusCode != 200 {
			t.Fatalf("listening stream on A: %v %v", held, err)
		}
		defer held.Body.Close()
		del, _ := http.NewRequest("DELETE", b.url+"/mcp/upper", nil)
		del.Header.Set("Mcp-Session-Id", session)
		resp, err := http.DefaultClient.Do(del)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if rest, err := io.ReadAll(held.Body); err != nil || !strings.Contains(string(rest), ": stream ended") {
			t.Fatalf("the listening stream on A after DELETE on B: %q, %v; want it ended", rest, err)
		}
		// A reads sessions through client-side caching: it refuses the session once Redis's invalidation
		// of its cached copy arrives, which is not ordered with the stream's end marker (another
		// connection, and on a cluster another server).
		testutil.WaitFor(t, "A to refuse the deleted session with 404", func() bool {
			code, _, body := mcpPost(t, a.url+"/mcp/upper", session, `{"jsonrpc":"2.0","id":3,"method":"ping"}`)
			if code != 404 && code != 200 {
				t.Fatalf("a deleted session on A: %d %s; want 404 (or 200 until the invalidation arrives)", code, body)
			}
			return code == 404
		})
	})
}

// TestMCPSSESessionLease: with Redis an HTTP+SSE session lives on a lease that the node holding its
// stream renews; when that node dies, the session ends a lease later instead of at the 24h TTL, and the
// other nodes answer its messages with 404.
func TestMCPSSESessionLease(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes")
	}
	const lease = 600 * time.Millisecond
	eachRedis(t, func(t *testing.T, r redisUnderTest) {
		client, err := redisstore.NewClient(strings.Split(r.addr, ","), "")
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		a := startNode(t, "node-a", "REDIS_ADDR="+r.addr, "MCP_SESSION_LEASE="+lease.String())
		b := startNode(t, "node-b", "REDIS_ADDR="+r.addr, "MCP_SESSION_LEASE="+lease.String())
		fn := mcpFunction(t)
		if code, out := request(t, "POST", a.url+"/admin/functions", fmt.Sprintf(`{"name":"upper","endpoint":"%s","mcp":true,"timeout":5}`, fn.URL)); code != 201 {
			t.Fatalf("register: %d %v", code, out)
		}
		stream := subscribe(t, a.url+"/mcp/upper/sse", "")
		ev, _ := stream.next(t)
		endpoint, ok := strings.CutPrefix(ev.Data, "/mcp/upper/messages?sessionId=")
		if ev.Type != "endpoint" || !ok {
			t.Fatalf("first event %+v", ev)
		}
		key := "sseedge:mcp:{" + endpoint + "}"
		pttl := func() int64 {
			ms, err := client.Do(t.Context(), client.B().Pttl().Key(key).Build()).AsInt64()
			if err != nil {
				t.Fatalf("PTTL %s: %v", key, err)
			}
			return ms
		}
		first := pttl()
		if first <= 0 || first > lease.Milliseconds() {
			t.Fatalf("PTTL of a new HTTP+SSE session: %d ms; want a lease of at most %d ms", first, lease.Milliseconds())
		}
		// Between renewals the PTTL falls; a renewal raises it again.
		prev := first
		testutil.WaitFor(t, "node A to renew the session's lease", func() bool {
			cur := pttl()
			renewed := cur > prev
			prev = cur
			return renewed
		})
		initMsg := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		if code, _, body := mcpPost(t, b.url+ev.Data, "", initMsg); code != 202 {
			t.Fatalf("initialize on B while A holds the stream: %d %s", code, body)
		}

		a.kill()
		testutil.WaitFor(t, "the session of the dead node to expire", func() bool { return pttl() == -2 })
		if code, _, body := mcpPost(t, b.url+ev.Data, "", initMsg); code != 404 {
			t.Fatalf("a message to the dead node's session on B: %d %s; want 404", code, body)
		}
	})
}
