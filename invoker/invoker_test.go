package invoker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

func TestInvokeSendsPayloadAndHeaders(t *testing.T) {
	var got http.Header
	var body []byte
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		got, body = r.Header.Clone(), readBody(r)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "echo", []string{srv.URL + "/echo"}, func(f *registry.Function) {
		f.Headers = map[string]string{"X-Api-Key": "k1"}
	})
	res, err := inv.Invoke(context.Background(), f, invoker.Request{
		Payload: []byte(`{"text":"hi"}`), ClientID: "c1", InvocationID: "inv-42",
		Header: map[string]string{"Mcp-Session-Id": "s1"},
	})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Status != 200 || string(res.Body) != `{"ok":true}` || res.ContentType != "application/json" || res.Attempts != 1 {
		t.Fatalf("result = %+v", res)
	}
	if res.TraceID == "" || res.InvocationID != "inv-42" {
		t.Fatalf("trace/invocation id = %q/%q", res.TraceID, res.InvocationID)
	}
	if string(body) != `{"text":"hi"}` {
		t.Errorf("body = %s", body)
	}
	for k, v := range map[string]string{
		"Content-Type": "application/json", "X-Invocation-Id": "inv-42", "X-Client-Id": "c1",
		"X-Api-Key": "k1", "Mcp-Session-Id": "s1",
	} {
		if got.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, got.Get(k), v)
		}
	}
	tp := got.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-"+res.TraceID+"-") {
		t.Errorf("traceparent = %q, want trace id %s", tp, res.TraceID)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	var n atomic.Int64
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "done")
	})
	inv := newInvoker(t, invoker.Config{})
	res, err := invoke(t, inv, fn(t, "flaky", []string{srv.URL}, nil), `{}`)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Status != 200 || res.Attempts != 3 || string(res.Body) != "done" {
		t.Fatalf("result = %+v, want 200 after 3 attempts", res)
	}
}

func TestNonRetryableStatusIsAResult(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "nope")
	})
	inv := newInvoker(t, invoker.Config{})
	res, err := invoke(t, inv, fn(t, "missing", []string{srv.URL}, nil), `{}`)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Status != 404 || res.Attempts != 1 || srv.Hits.Load() != 1 {
		t.Fatalf("result = %+v, hits %d; want one 404", res, srv.Hits.Load())
	}
}

func TestUpstreamErrorAfterAttempts(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	inv := newInvoker(t, invoker.Config{})
	_, err := invoke(t, inv, fn(t, "down", []string{srv.URL}, nil), `{}`)
	ie := wantCode(t, err, invoker.CodeUpstreamError)
	if ie.Status != 502 || ie.Attempts != 3 || !errors.Is(err, invoker.ErrUpstream) {
		t.Fatalf("error = %+v", ie)
	}
}

func TestHangingFunctionTimesOutWithoutLeaks(t *testing.T) {
	baseline := runtime.NumGoroutine()
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			return
		}
		hang(r)
	})
	inv := invoker.New(invoker.Config{MaxIdleConnDuration: 100 * time.Millisecond})
	if _, err := invoke(t, inv, fn(t, "warm", []string{srv.URL + "/ok"}, nil), `{}`); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	beforeCall := runtime.NumGoroutine()

	f := fn(t, "hang", []string{srv.URL + "/hang"}, func(f *registry.Function) {
		f.Timeout = registry.Duration(300 * time.Millisecond)
	})
	start := time.Now()
	_, err := invoke(t, inv, f, `{}`)
	took := time.Since(start)
	wantCode(t, err, invoker.CodeTimeout)
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("invoke took %v, want about 300ms", took)
	}
	testutil.WaitGoroutines(t, beforeCall) // nothing of the call survives it

	inv.Close()
	srv.Close()
	testutil.WaitGoroutines(t, baseline)
}

func TestAttemptTimeoutLeavesRoomForRetry(t *testing.T) {
	var n atomic.Int64
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			hang(r)
			return
		}
		fmt.Fprint(w, "second")
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "slowfirst", []string{srv.URL}, func(f *registry.Function) {
		f.Timeout = registry.Duration(3 * time.Second)
		f.Retry.AttemptTimeout = registry.Duration(100 * time.Millisecond)
	})
	res, err := invoke(t, inv, f, `{}`)
	if err != nil || res.Attempts != 2 || string(res.Body) != "second" {
		t.Fatalf("Invoke = %+v, %v; want success on attempt 2", res, err)
	}
}

func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "breaky", []string{srv.URL}, func(f *registry.Function) {
		f.Breaker.ConsecutiveFailures = 3
		f.Breaker.OpenDuration = registry.Duration(200 * time.Millisecond)
	})
	for i := range 3 { // 500 is not retried, so each invoke is one failure
		res, err := invoke(t, inv, f, `{}`)
		if err != nil || res.Status != 500 {
			t.Fatalf("call %d = %+v, %v; want a 500 result", i, res, err)
		}
	}
	if s := inv.Health("breaky").Endpoints[0].BreakerState; s != "open" {
		t.Fatalf("breaker state = %s, want open", s)
	}
	hits := srv.Hits.Load()
	for range 5 {
		_, err := invoke(t, inv, f, `{}`)
		wantCode(t, err, invoker.CodeCircuitOpen)
	}
	if srv.Hits.Load() != hits {
		t.Fatalf("function saw %d requests while the breaker was open", srv.Hits.Load()-hits)
	}
	if h := inv.Health("breaky"); h.Healthy {
		t.Fatalf("health = %+v, want unhealthy while open", h)
	}

	failing.Store(false)
	testutil.WaitFor(t, "half-open", func() bool { return inv.Health("breaky").Endpoints[0].BreakerState == "half-open" })
	res, err := invoke(t, inv, f, `{}`)
	if err != nil || res.Status != 200 {
		t.Fatalf("probe = %+v, %v; want 200", res, err)
	}
	if h := inv.Health("breaky"); h.Endpoints[0].BreakerState != "closed" || !h.Healthy {
		t.Fatalf("after probe health = %+v, want closed", h)
	}
}

func TestFailureRatioTrips(t *testing.T) {
	var n atomic.Int64
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 { // every other call fails: never 2 failures in a row
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "ratio", []string{srv.URL}, func(f *registry.Function) {
		f.Breaker.FailureRatio = 0.5
		f.Breaker.MinRequests = 6
	})
	for range 6 {
		invoke(t, inv, f, `{}`)
	}
	_, err := invoke(t, inv, f, `{}`)
	wantCode(t, err, invoker.CodeCircuitOpen)
}

func TestNewBreakerSettingsGetNewBreaker(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "rereg", []string{srv.URL}, func(f *registry.Function) { f.Breaker.ConsecutiveFailures = 1 })
	invoke(t, inv, f, `{}`)
	_, err := invoke(t, inv, f, `{}`)
	wantCode(t, err, invoker.CodeCircuitOpen)

	f.Breaker.ConsecutiveFailures = 2 // re-registered with new settings
	if res, err := invoke(t, inv, f, `{}`); err != nil || res.Status != 500 {
		t.Fatalf("after re-registration = %+v, %v; want the call to go through", res, err)
	}
	inv.Forget("rereg")
	if h := inv.Health("rereg"); len(h.Endpoints) != 0 {
		t.Fatalf("Health after Forget = %+v", h)
	}
}

func TestTwoEndpointsOneDown(t *testing.T) {
	baseline := runtime.NumGoroutine()
	up := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "up") })
	inv := invoker.New(invoker.Config{MaxIdleConnDuration: 100 * time.Millisecond})
	f := fn(t, "pair", []string{deadAddress(t), up.URL}, nil)
	for i := range 40 {
		res, err := invoke(t, inv, f, `{}`)
		if err != nil || string(res.Body) != "up" {
			t.Fatalf("call %d = %+v, %v", i, res, err)
		}
	}
	h := inv.Health("pair")
	if h.Endpoints[0].Healthy || h.Endpoints[0].BreakerState != "open" || h.Endpoints[0].LastError == "" || !h.Endpoints[1].Healthy {
		t.Fatalf("health = %+v, want the dead endpoint open and the other healthy", h)
	}
	inv.Close()
	up.Close()
	testutil.WaitGoroutines(t, baseline)
}

func TestRoundRobin(t *testing.T) {
	var a, b atomic.Int64
	sa := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { a.Add(1) })
	sb := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { b.Add(1) })
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "rr", []string{sa.URL, sb.URL}, nil)
	for range 10 {
		if _, err := invoke(t, inv, f, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	if a.Load() != 5 || b.Load() != 5 {
		t.Fatalf("spread = %d/%d, want 5/5", a.Load(), b.Load())
	}
}

func TestRetryMovesToNextEndpoint(t *testing.T) {
	bad := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	good := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "good") })
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "mover", []string{bad.URL, good.URL}, func(f *registry.Function) { f.Retry.MaxAttempts = 2 })
	for range 6 {
		res, err := invoke(t, inv, f, `{}`)
		if err != nil || string(res.Body) != "good" {
			t.Fatalf("Invoke = %+v, %v", res, err)
		}
	}
}

func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	var n atomic.Int64
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(429)
			return
		}
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
			return
		}
		fmt.Fprint(w, "ok")
	})
	inv := newInvoker(t, invoker.Config{})
	res, err := invoke(t, inv, fn(t, "limited", []string{srv.URL + "/short"}, nil), `{}`)
	if err != nil || res.Attempts != 2 {
		t.Fatalf("Retry-After 0: %+v, %v; want success on attempt 2", res, err)
	}
	start := time.Now()
	_, err = invoke(t, inv, fn(t, "limited2", []string{srv.URL + "/long"}, nil), `{}`)
	ie := wantCode(t, err, invoker.CodeUpstreamError)
	if ie.Status != 429 || ie.Attempts != 1 || time.Since(start) > time.Second {
		t.Fatalf("Retry-After past the deadline: %+v after %v; want a prompt stop", ie, time.Since(start))
	}
}

func TestResponseTooLarge(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 8192)) })
	inv := newInvoker(t, invoker.Config{MaxResponseBytes: 1024})
	_, err := invoke(t, inv, fn(t, "big", []string{srv.URL}, nil), `{}`)
	ie := wantCode(t, err, invoker.CodeResponseTooLarge)
	if ie.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1 (not retried)", ie.Attempts)
	}
}

func TestCanceledContext(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {})
	inv := newInvoker(t, invoker.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := inv.Invoke(ctx, fn(t, "c", []string{srv.URL}, nil), invoker.Request{})
	wantCode(t, err, invoker.CodeCanceled)
	if srv.Hits.Load() != 0 {
		t.Fatal("function called despite a canceled context")
	}
}

func TestHealthChecks(t *testing.T) {
	var sick atomic.Bool
	healthHits := atomic.Int64{}
	mk := func(name string) *testutil.FunctionServer {
		return testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				healthHits.Add(1)
				if name == "b" && sick.Load() {
					w.WriteHeader(503)
				}
				return
			}
			fmt.Fprint(w, name)
		})
	}
	sa, sb := mk("a"), mk("b")
	sick.Store(true)
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "probed", []string{sa.URL + "/fn", sb.URL + "/fn"}, func(f *registry.Function) { f.HealthEndpoint = "/health" })
	store := new(registry.MemoryStore)
	if err := store.Put(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := inv.StartHealthChecks(context.Background(), 50*time.Millisecond, store.List); err != nil {
		t.Fatal(err)
	}
	if err := inv.StartHealthChecks(context.Background(), time.Second, store.List); err == nil {
		t.Fatal("second StartHealthChecks accepted")
	}
	testutil.WaitFor(t, "a failed probe", func() bool {
		h := inv.Health("probed")
		return len(h.Endpoints) == 2 && h.Endpoints[1].CheckedAt != nil && !h.Endpoints[1].Healthy
	})
	for range 6 {
		res, err := invoke(t, inv, f, `{}`)
		if err != nil || string(res.Body) != "a" {
			t.Fatalf("Invoke = %+v, %v; want only the healthy endpoint", res, err)
		}
	}
	if h := inv.Health("probed"); !strings.Contains(h.Endpoints[1].LastError, "503") {
		t.Fatalf("last error = %q", h.Endpoints[1].LastError)
	}
	sick.Store(false)
	testutil.WaitFor(t, "recovery", func() bool { return inv.Health("probed").Endpoints[1].Healthy })

	// A function deleted from the store loses its live state at the next round.
	if err := store.Delete(context.Background(), "probed"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "pruning", func() bool { return len(inv.Health("probed").Endpoints) == 0 })
}

func TestAllEndpointsUnhealthy(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(500)
		}
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "sick", []string{srv.URL + "/fn"}, func(f *registry.Function) { f.HealthEndpoint = srv.URL + "/health" })
	list := func(context.Context) ([]registry.Function, error) { return []registry.Function{f}, nil }
	if err := inv.StartHealthChecks(context.Background(), 20*time.Millisecond, list); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "probe", func() bool { return !inv.Health("sick").Healthy && len(inv.Health("sick").Endpoints) == 1 })
	_, err := invoke(t, inv, f, `{}`)
	wantCode(t, err, invoker.CodeNoHealthyEndpoint)
}

func TestHealthForUnseenFunction(t *testing.T) {
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "fresh", []string{"http://user:pw@127.0.0.1:1/a", "http://127.0.0.1:2/b"}, nil)
	h := inv.HealthFor(f)
	if !h.Healthy || len(h.Endpoints) != 2 || h.Endpoints[0].BreakerState != "closed" || strings.Contains(h.Endpoints[0].Endpoint, "pw") {
		t.Fatalf("HealthFor = %+v", h)
	}
}

func TestSpansAndTraceparent(t *testing.T) {
	var tp atomic.Value
	var n atomic.Int64
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		tp.Store(r.Header.Get("Traceparent"))
		if n.Add(1) == 1 {
			w.WriteHeader(503)
		}
	})
	rec := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer provider.Shutdown(context.Background())
	inv := newInvoker(t, invoker.Config{TracerProvider: provider})
	res, err := invoke(t, inv, fn(t, "traced", []string{srv.URL}, nil), `{}`)
	if err != nil || res.Attempts != 2 {
		t.Fatalf("Invoke = %+v, %v", res, err)
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 1 invoke + 2 attempts", len(spans))
	}
	parent := spans[len(spans)-1]
	if parent.Name() != "invoke traced" {
		t.Fatalf("last span = %q", parent.Name())
	}
	for _, s := range spans[:2] {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("attempt span %q is not a child of the invoke span", s.Name())
		}
	}
	want := fmt.Sprintf("00-%s-%s-01", parent.SpanContext().TraceID(), spans[1].SpanContext().SpanID())
	if got := tp.Load().(string); got != want || res.TraceID != parent.SpanContext().TraceID().String() {
		t.Fatalf("traceparent = %q, want %q (the last attempt's span)", got, want)
	}
}

func TestConcurrentInvokes(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		var v map[string]int
		json.Unmarshal(readBody(r), &v)
		fmt.Fprintf(w, "%d", v["i"])
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "many", []string{srv.URL}, nil)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			res, err := inv.Invoke(context.Background(), f, invoker.Request{Payload: fmt.Appendf(nil, `{"i":%d}`, i)})
			if err != nil || string(res.Body) != fmt.Sprint(i) {
				t.Errorf("call %d = %q, %v", i, res.Body, err)
			}
		})
	}
	wg.Wait()
}

func TestClosedInvoker(t *testing.T) {
	inv := invoker.New(invoker.Config{})
	inv.Close()
	inv.Close() // idempotent
	_, err := inv.Invoke(context.Background(), fn(t, "x", []string{"http://127.0.0.1:1/"}, nil), invoker.Request{})
	wantCode(t, err, invoker.CodeCanceled)
}

func TestCallerDeadlineIsATimeout(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { hang(r) })
	inv := newInvoker(t, invoker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := inv.Invoke(ctx, fn(t, "slow", []string{srv.URL}, nil), invoker.Request{})
	wantCode(t, err, invoker.CodeTimeout)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("returned after %v, want the caller's 150ms deadline", took)
	}
}

func TestCloseStopsHealthChecks(t *testing.T) {
	baseline := runtime.NumGoroutine()
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {})
	inv := invoker.New(invoker.Config{MaxIdleConnDuration: 100 * time.Millisecond})
	f := fn(t, "probed", []string{srv.URL}, func(f *registry.Function) { f.HealthEndpoint = "/health" })
	var rounds atomic.Int64
	list := func(context.Context) ([]registry.Function, error) {
		rounds.Add(1)
		return []registry.Function{f}, nil
	}
	if err := inv.StartHealthChecks(context.Background(), 10*time.Millisecond, list); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a few rounds", func() bool { return rounds.Load() >= 3 })
	inv.Close()
	after := rounds.Load()
	srv.Close()
	testutil.WaitGoroutines(t, baseline)
	if rounds.Load() != after {
		t.Fatal("health checks ran after Close")
	}
	if err := inv.StartHealthChecks(context.Background(), time.Second, list); err == nil {
		t.Fatal("StartHealthChecks accepted after Close")
	}
}

func TestDialHookIsUsed(t *testing.T) {
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	var dials atomic.Int64
	guard := errors.New("refused by guard")
	inv := newInvoker(t, invoker.Config{Dial: func(addr string) (net.Conn, error) {
		dials.Add(1)
		if strings.HasSuffix(addr, ":1") {
			return nil, guard
		}
		return net.Dial("tcp", addr)
	}})
	if res, err := invoke(t, inv, fn(t, "ok", []string{srv.URL}, nil), `{}`); err != nil || string(res.Body) != "ok" {
		t.Fatalf("Invoke = %+v, %v", res, err)
	}
	_, err := invoke(t, inv, fn(t, "guarded", []string{"http://127.0.0.1:1/"}, func(f *registry.Function) { f.Retry.MaxAttempts = 1 }), `{}`)
	ie := wantCode(t, err, invoker.CodeUpstreamError)
	if !errors.Is(err, guard) || dials.Load() != 2 {
		t.Fatalf("error = %v (%+v), dials %d", err, ie, dials.Load())
	}
}

func TestStalledTLSHandshakeEndsAtDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept() // accept, then say nothing: the handshake stalls
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "tls", []string{"https://" + ln.Addr().String() + "/"}, func(f *registry.Function) {
		f.Timeout = registry.Duration(300 * time.Millisecond)
	})
	start := time.Now()
	_, err = invoke(t, inv, f, `{}`)
	wantCode(t, err, invoker.CodeTimeout)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("returned after %v, want about 300ms", took)
	}
}
