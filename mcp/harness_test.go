package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/mcp/mcpfunc"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// TestMain starts what a process keeps for its life once (teststack.WarmUp), so the goroutine counts
// taken by tests see only their own.
func TestMain(m *testing.M) {
	if err := teststack.WarmUp(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// upperServer is the sample MCP function of examples/functions (NewMCPHandler), which a test cannot
// import from package main: the same tool on the same kit.
func upperServer() *mcpfunc.Server {
	return &mcpfunc.Server{Name: "sseedge-examples", Version: "1.0.0", Tools: []mcpfunc.Tool{{
		Name:        "upper",
		Description: "Upper-cases a text.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
		Call: func(_ context.Context, c mcpfunc.ToolCall) (string, error) {
			var args struct {
				Text string `json:"text"`
			}
			err := json.Unmarshal(c.Arguments, &args)
			return strings.ToUpper(args.Text), err
		},
	}}}
}

// functions is the function host of a test: the MCP function at /mcp, and at /flaky/{mode} one that
// answers initialize and notifications properly but misbehaves on tools/call: mode 500 answers 500,
// 503 answers 503, hang waits for the caller to give up, 202 answers 202.
type functions struct {
	*httptest.Server
	calls   atomic.Int64 // tools/call requests received by /flaky
	mu      sync.Mutex
	headers http.Header // of the last request to /mcp
}

func startFunctions(t *testing.T) *functions {
	f := &functions{}
	up := upperServer()
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = r.Header.Clone()
		f.mu.Unlock()
		up.ServeHTTP(w, r)
	})
	mux.HandleFunc("/flaky/{mode}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct{ Method string }
		_ = json.Unmarshal(body, &m)
		if m.Method != "tools/call" {
			r.Body = io.NopCloser(bytes.NewReader(body))
			up.ServeHTTP(w, r)
			return
		}
		f.calls.Add(1)
		switch r.PathValue("mode") {
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "503":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case "202":
			w.WriteHeader(http.StatusAccepted)
		case "hang":
			<-r.Context().Done()
		}
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *functions) lastHeaders() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers.Clone()
}

// harness is an edge wired as cmd/edge wires it, with the MCP gateway, on a loopback port.
type harness struct {
	url      string
	srv      *teststack.Stack
	gw       *mcp.Gateway
	sessions *mcp.MemorySessionStore
	store    *registry.MemoryStore
	fns      *functions
	client   *http.Client
}

type options struct {
	heartbeat time.Duration
	origins   []string                // CORS_ORIGINS; nil allows all
	sessions  *mcp.MemorySessionStore // nil: an unbounded one
	metrics   *metrics.Metrics
}

func start(t *testing.T, o options) *harness {
	t.Helper()
	leakCheck(t)
	h := &harness{fns: startFunctions(t), store: &registry.MemoryStore{}, sessions: &mcp.MemorySessionStore{}}
	if o.sessions != nil {
		h.sessions = o.sessions
	}
	h.register(t, registry.Function{Name: "upper", Endpoint: h.fns.URL + "/mcp", MCP: true, Idempotent: true})
	h.register(t, registry.Function{Name: "plain", Endpoint: h.fns.URL + "/mcp"})
	for _, mode := range []string{"500", "503", "202", "hang"} {
		h.register(t, registry.Function{Name: "flaky-" + mode, Endpoint: h.fns.URL + "/flaky/" + mode, MCP: true,
			Timeout: registry.Duration(300 * time.Millisecond),
			Retry:   registry.Retry{MaxAttempts: 3, BackoffBase: registry.Duration(time.Millisecond)},
			Breaker: registry.Breaker{ConsecutiveFailures: 100}})
	}
	h.register(t, registry.Function{Name: "flaky-503-idempotent", Endpoint: h.fns.URL + "/flaky/503", MCP: true, Idempotent: true,
		Retry:   registry.Retry{MaxAttempts: 3, BackoffBase: registry.Duration(time.Millisecond)},
		Breaker: registry.Breaker{ConsecutiveFailures: 100}})

	// A dialer of our own (cmd/edge has netguard's) and short idle times: fasthttp's cleaner goroutines
	// end soon after the test, so the leak check sees them gone.
	inv := invoker.New(invoker.Config{Logger: slog.New(slog.DiscardHandler), MaxIdleConnDuration: 200 * time.Millisecond,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return (&net.Dialer{Timeout: timeout}).Dial("tcp", addr)
		}})
	srv, err := teststack.New(teststack.Config{NodeID: "test-node", Logger: slog.New(slog.DiscardHandler), HeartbeatInterval: o.heartbeat, CORSOrigins: o.origins})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mcp.New(mcp.Config{Functions: h.store, Invoker: inv, Streams: srv, Sessions: h.sessions, Logger: slog.New(slog.DiscardHandler), Metrics: o.metrics})
	if err != nil {
		t.Fatal(err)
	}
	gw.Register(srv.Router())
	srv.HandleStreams("/mcp/", gw.OpenStream) // as cmd/edge wires it: streams on fresh connections skip fasthttp
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	h.url, h.srv, h.gw = "http://"+ln.Addr().String(), srv, gw
	h.client = &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Close(ctx); err != nil {
			t.Errorf("gateway close: %v", err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		inv.Close()
	})
	return h
}

func (h *harness) register(t *testing.T, fn registry.Function) {
	t.Helper()
	fn, err := fn.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Put(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// leakCheck fails the test if it leaves goroutines behind; idle keep-alive connections of the default
// HTTP client are closed first, since they are not the test's leaks.
func leakCheck(t *testing.T) {
	testutil.LeakCheck(t)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
}

// post sends body to path with the Streamable HTTP headers plus extra ("" values delete a header).
func (h *harness) post(t *testing.T, path, body string, extra map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return h.do(t, req, extra)
}

func (h *harness) do(t *testing.T, req *http.Request, extra map[string]string) (*http.Response, []byte) {
	t.Helper()
	for k, v := range extra {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`

// initialize opens a Streamable HTTP session with fn and returns its ID.
func (h *harness) initialize(t *testing.T, fn string) string {
	t.Helper()
	resp, body := h.post(t, "/mcp/"+fn, initialize, nil)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d, session %q: %s", resp.StatusCode, id, body)
	}
	return id
}

// rpcReply is a JSON-RPC response as a test reads it.
type rpcReply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeReply(t *testing.T, b []byte) rpcReply {
	t.Helper()
	var r rpcReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("not a JSON-RPC message: %v: %q", err, b)
	}
	return r
}

// sseStream is a raw event stream read by a test.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

type event struct{ id, name, data string }

func (h *harness) openStream(t *testing.T, req *http.Request) *sseStream {
	t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event named one of names (all when none given), skipping the others.
func (s *sseStream) next(t *testing.T, names ...string) event {
	t.Helper()
	for {
		var ev event
		has := false
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.id = value
			case "event":
				ev.name = value
			case "data":
				ev.data, has = ev.data+value, true
			}
		}
		if !has {
			continue
		}
		if ev.name == "" {
			ev.name = "message"
		}
		if len(names) == 0 || slices.Contains(names, ev.name) {
			return ev
		}
	}
}

// openSSE opens an HTTP+SSE session with fn and returns its stream and message endpoint.
func (h *harness) openSSE(t *testing.T, fn string) (*sseStream, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+"/mcp/"+fn+"/sse", nil)
	req.Header.Set("Accept", "text/event-stream")
	s := h.openStream(t, req)
	ev := s.next(t, "endpoint")
	if !strings.HasPrefix(ev.data, "/mcp/"+fn+"/messages?sessionId=") {
		t.Fatalf("endpoint event: %q", ev.data)
	}
	return s, ev.data
}
