package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/edge"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// TestMain configures netpoll as cmd/edge does (small read buffers, so every test also runs with heads
// longer than one buffer) and starts what a process keeps for its life once (teststack.WarmUp), so
// goroutine counts taken by tests see only their own.
func TestMain(m *testing.M) {
	if err := edge.ConfigureNetpoll(0); err != nil {
		panic(err)
	}
	if err := teststack.WarmUp(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// testServer is a real edge on a loopback port.
type testServer struct {
	*teststack.Stack
	addr string // host:port
	url  string
}

func start(t *testing.T, cfg teststack.Config) *testServer {
	t.Helper()
	return startWith(t, cfg, nil)
}

// startWith is start with a hook that runs before Serve (to add stream openers, say).
func startWith(t *testing.T, cfg teststack.Config, beforeServe func(*teststack.Stack)) *testServer {
	t.Helper()
	leakCheck(t)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "test-node"
	}
	srv, err := teststack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if beforeServe != nil {
		beforeServe(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testServer{Stack: srv, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
}

// leakCheck fails the test if it leaves goroutines behind; idle keep-alive connections of the default
// HTTP client are closed first, since they are not the test's leaks.
func leakCheck(t *testing.T) {
	testutil.LeakCheck(t)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
}

// sseStream is a stream read by an independent SSE parser (testutil.SSEStream), block by block.
type sseStream struct{ *testutil.SSEStream }

func openSSE(t *testing.T, url string, header http.Header) *sseStream {
	t.Helper()
	return &sseStream{testutil.OpenSSE(t, url, header)}
}

// next returns the next block that is not a heartbeat, id-only ones included.
func (s *sseStream) next(t *testing.T) sse.Event {
	t.Helper()
	ev, ok := s.Block(t)
	if !ok {
		t.Fatal("stream ended")
	}
	return ev
}

// expectNone checks that no event with data other than heartbeats arrives within d.
func (s *sseStream) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	s.ExpectNone(t, d)
}

// post sends a JSON body and decodes the JSON answer.
func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %d, body %q is not JSON", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func publish(t *testing.T, srv *testServer, topic, event, data string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"event": event, "data": data})
	code, out := post(t, srv.url+"/publish"+topic, string(body))
	if code != 200 {
		t.Fatalf("publish %s: %d %v", topic, code, out)
	}
	return out["id"].(string)
}

// rawStream opens a stream with a bare socket and reads until the retry hint that ends the stream head,
// so that the stream is known to be established. Reading more is up to the caller.
func rawStream(t testing.TB, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n", path)
	r := bufio.NewReaderSize(c, 512)
	if err := readUntil(r, "retry: "); err != nil {
		c.Close()
		t.Fatalf("stream %s: %v", path, err)
	}
	return c, r
}

func readUntil(r *bufio.Reader, marker string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, marker) {
			return nil
		}
	}
}

// rawRequest sends raw bytes and returns the status code and body of the answer.
func rawRequest(t *testing.T, addr string, req []byte) (int, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, bytes.TrimSpace(body)
}

// dialRaw sends raw bytes on a new connection and returns it with a reader.
func dialRaw(t *testing.T, addr, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// secondStatus skips one response and returns the status of the next.
func secondStatus(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	first, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, first.Body)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("second response: %v", err)
	}
	var status int
	fmt.Sscanf(line, "HTTP/1.1 %d", &status)
	return status
}

// stalledStream opens a stream from a client with a tiny receive buffer that never reads: a slow
// consumer.
func stalledStream(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscallRawConn) error { return setRcvBuf(rc, 4096) }}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return c
}
