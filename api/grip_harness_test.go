package api_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// gripKey is the GRIP_KEY of the test edges, and gripAdmin their admin token.
const (
	gripKey   = "grip-test-key"
	gripAdmin = "grip-admin"
)

// gripEdge is a whole node (teststack) with the GRIP route and GRIP publishing, its functions in a
// memory store and called by a real invoker.
type gripEdge struct {
	t     *testing.T
	url   string
	stack *teststack.Stack
	store *registry.MemoryStore
	reg   *prometheus.Registry
}

func newGripEdge(t *testing.T, edit func(*teststack.Config)) *gripEdge {
	t.Helper()
	testutil.LeakCheck(t)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	verifier, err := grip.NewControlVerifier([]byte(gripKey), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := teststack.Config{
		NodeID: "grip-node", Logger: slog.New(slog.DiscardHandler), Metrics: m, HeartbeatInterval: time.Second,
		AdminAuth:   auth.NewAdminAuth(gripAdmin),
		GripPublish: true, GripAuthorizer: &grip.Authorizer{AdminToken: gripAdmin, Verifier: verifier},
	}
	inv := invoker.New(invoker.Config{Metrics: m, MaxIdleConnDuration: 100 * time.Millisecond})
	signer, err := grip.NewSigner([]byte(gripKey), 0)
	if err != nil {
		t.Fatal(err)
	}
	store := new(registry.MemoryStore)
	cfg.GripSigner, cfg.GripStore, cfg.GripInvoker = signer, store, inv
	if edit != nil {
		edit(&cfg)
	}
	stack, err := teststack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stack.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stack.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		inv.Close()
	})
	return &gripEdge{t: t, url: "http://" + ln.Addr().String(), stack: stack, store: store, reg: reg}
}

// register stores a GRIP function at endpoint; edit adjusts it before it is normalized.
func (e *gripEdge) register(name, endpoint string, edit func(*registry.Function)) {
	e.t.Helper()
	fn := registry.Function{Name: name, Endpoint: endpoint, Grip: true, Timeout: registry.Duration(5 * time.Second)}
	if edit != nil {
		edit(&fn)
	}
	fn, err := fn.Normalize()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Put(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// do sends one request on a connection of its own and returns the answer.
func (e *gripEdge) do(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// publish posts a GRIP publish body with the admin token and fails the test unless it is applied.
func (e *gripEdge) publish(body string) {
	e.t.Helper()
	if st, _, b := e.do("POST", "/publish/", body, "Authorization", "Bearer "+gripAdmin, "Content-Type", "application/json"); st != 200 {
		e.t.Fatalf("GRIP publish %s: %d %s", body, st, b)
	}
}

// counter reads a labelled sseedge counter (0 when absent).
func (e *gripEdge) counter(name, label, value string) float64 {
	e.t.Helper()
	fams, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range fams {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// eventStream is a stream read by an independent SSE parser (testutil.SSEStream), event by event as
// a browser dispatches them.
type eventStream struct{ *testutil.SSEStream }

// openStream opens url with header (name, value pairs) and expects a 200 text/event-stream.
func openStream(t *testing.T, url string, header ...string) *eventStream {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &eventStream{testutil.OpenSSE(t, url, h)}
}
