package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// delivery is one recorded Deliver call.
type delivery struct {
	ClientID string
	Event    string
	Data     api.FunctionResponse
	Raw      string
	// Span is the span context Deliver's ctx carried: the publish of an async result belongs to the
	// invoke's trace.
	Span trace.SpanContext
}

// recorder records Deliver calls and lets tests wait for them.
type recorder struct {
	mu   sync.Mutex
	got  []delivery
	news chan struct{} // one token per delivery, for tests that wait on a few
}

func newRecorder() *recorder { return &recorder{news: make(chan struct{}, 4096)} }

func (r *recorder) deliver(ctx context.Context, clientID, event string, data []byte) error {
	var fr api.FunctionResponse
	if err := json.Unmarshal(data, &fr); err != nil {
		return err
	}
	r.mu.Lock()
	r.got = append(r.got, delivery{ClientID: clientID, Event: event, Data: fr, Raw: string(data), Span: trace.SpanContextFromContext(ctx)})
	r.mu.Unlock()
	select {
	case r.news <- struct{}{}:
	default:
	}
	return nil
}

// next waits (bounded) for the next delivery and returns it.
func (r *recorder) next(t *testing.T) delivery {
	t.Helper()
	select {
	case <-r.news:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

func (r *recorder) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// edge is the API served by a real fasthttp server on a loopback port.
type edge struct {
	t      *testing.T
	url    string
	api    *api.API
	inv    *invoker.Invoker
	store  *registry.MemoryStore
	rec    *recorder
	client *http.Client
	stop   func()
}

func newEdge(t *testing.T, edit func(*api.Config)) *edge {
	t.Helper()
	e := &edge{t: t, store: new(registry.MemoryStore), rec: newRecorder()}
	e.inv = invoker.New(invoker.Config{MaxIdleConnDuration: 100 * time.Millisecond})
	cfg := api.Config{
		Store: e.store, Invoker: e.inv, Deliver: e.rec.deliver,
		Logger: slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := api.New(cfg)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	e.api = a
	r := router.New()
	a.Register(r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The client gives up an idle connection well before the server would close it: a POST sent on a
	// connection the server is closing at that moment is reset and not retried (a loaded CI run of
	// TestThousandConcurrentAsync met that with a 1 s server idle timeout).
	srv := &fasthttp.Server{Handler: r.Handler, IdleTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	e.url = "http://" + ln.Addr().String()
	transport := &http.Transport{MaxIdleConnsPerHost: 200, IdleConnTimeout: 5 * time.Second}
	e.client = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			transport.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Close(ctx); err != nil {
				t.Errorf("api.Close: %v", err)
			}
			if err := srv.ShutdownWithContext(ctx); err != nil {
				t.Errorf("server shutdown: %v", err)
			}
			<-served
			e.inv.Close()
		})
	}
	t.Cleanup(e.stop)
	return e
}

// do sends a request to the edge and returns status, headers and body.
func (e *edge) do(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// register registers a function through the API and fails the test unless it is accepted.
func (e *edge) register(body string) {
	e.t.Helper()
	if st, _, b := e.do("POST", "/admin/functions", body); st != 201 && st != 200 {
		e.t.Fatalf("register %s: %d %s", body, st, b)
	}
}

// errorBody decodes {"error","code"}.
func errorBody(t *testing.T, b []byte) (msg, code string) {
	t.Helper()
	var eb struct{ Error, Code string }
	if err := json.Unmarshal(b, &eb); err != nil {
		t.Fatalf("error body %s: %v", b, err)
	}
	return eb.Error, eb.Code
}

func readAll(r *http.Request) []byte {
	var b bytes.Buffer
	b.ReadFrom(r.Body)
	return b.Bytes()
}

// TestMain starts what a process keeps for its life once (teststack.WarmUp), so the goroutine counts
// taken by tests see only their own.
func TestMain(m *testing.M) {
	if err := teststack.WarmUp(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
