package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/internal/testutil"
)

// upperFn answers {"text": UPPER(text)} and reports the headers it was given.
func upperFn(t *testing.T) *testutil.FunctionServer {
	return testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Text string }
		json.Unmarshal(readAll(r), &in)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"text": strings.ToUpper(in.Text), "client": r.Header.Get("X-Client-Id"),
			"invocation": r.Header.Get("X-Invocation-Id"), "traceparent": r.Header.Get("Traceparent"),
		})
	})
}

func TestSyncInvokeReturnsResult(t *testing.T) {
	e := newEdge(t, nil)
	fn := upperFn(t)
	e.register(fmt.Sprintf(`{"name":"upper","endpoint":%q}`, fn.URL+"/upper"))
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	st, hdr, b := e.do("POST", "/invoke/upper", `{"payload":{"text":"hello"},"client_id":"c-1"}`, "Traceparent", parent)
	if st != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("invoke = %d %s %s", st, hdr, b)
	}
	var out map[string]string
	json.Unmarshal(b, &out)
	if out["text"] != "HELLO" || out["client"] != "c-1" || out["invocation"] != hdr.Get("X-Invocation-Id") || out["invocation"] == "" {
		t.Fatalf("result = %s, invocation header %q", b, hdr.Get("X-Invocation-Id"))
	}
	if !strings.HasPrefix(out["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Fatalf("function got traceparent %q, want the caller's trace", out["traceparent"])
	}
	if hdr.Get("X-Invocation-Attempts") != "1" {
		t.Errorf("attempts header = %q", hdr.Get("X-Invocation-Attempts"))
	}
}

func TestInvokeBadRequests(t *testing.T) {
	e := newEdge(t, nil)
	fn := upperFn(t)
	e.register(fmt.Sprintf(`{"name":"upper","endpoint":%q}`, fn.URL))
	cases := []struct {
		path, body, code string
		status           int
	}{
		{"/invoke/nope", `{"payload":1}`, "not_found", 404},
		{"/invoke/upper", `{"payload":`, "bad_json", 400},
		{"/invoke/upper", `{"client_id":5}`, "bad_json", 400},
		{"/invoke/upper", `{"payload":1,"async":true}`, "client_id_required", 400},
		{"/invoke/upper", `{"payload":1,"timeout":-1}`, "invalid_timeout", 400},
		{"/invoke/upper", `{"payload":1,"client_id":"bad id"}`, "invalid_client_id", 400},
		// IDs no stream can carry: before, a/b was accepted with 202 and its result only logged.
		{"/invoke/upper", `{"payload":1,"client_id":"a/b","async":true}`, "invalid_client_id", 400},
		{"/invoke/upper", `{"payload":1,"client_id":"50%off","async":true}`, "invalid_client_id", 400},
		{"/invoke/upper", `{"payload":1,"client_id":"` + strings.Repeat("x", 129) + `","async":true}`, "invalid_client_id", 400},
	}
	for _, c := range cases {
		st, _, b := e.do("POST", c.path, c.body)
		if _, code := errorBody(t, b); st != c.status || code != c.code {
			t.Errorf("%s %s = %d %s, want %d %s", c.path, c.body, st, b, c.status, c.code)
		}
	}
	if fn.Hits.Load() != 0 {
		t.Errorf("function called %d times by bad requests", fn.Hits.Load())
	}
	// An empty body is a call with a null payload.
	if st, _, b := e.do("POST", "/invoke/upper", ""); st != 200 {
		t.Errorf("empty body = %d %s", st, b)
	}
}

func TestSyncErrorsMapToStatuses(t *testing.T) {
	e := newEdge(t, nil)
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		readAll(r)
		switch r.URL.Path {
		case "/hang":
			<-r.Context().Done()
		case "/503":
			w.WriteHeader(503)
		case "/teapot":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(418)
			fmt.Fprint(w, "short and stout")
		}
	})
	e.register(fmt.Sprintf(`{"name":"hang","endpoint":%q,"timeout":5}`, fn.URL+"/hang"))
	e.register(fmt.Sprintf(`{"name":"down","endpoint":%q,"retry":{"backoff_base":"1ms"}}`, fn.URL+"/503"))
	e.register(fmt.Sprintf(`{"name":"teapot","endpoint":%q}`, fn.URL+"/teapot"))

	start := time.Now()
	st, _, b := e.do("POST", "/invoke/hang", `{"payload":null,"timeout":0.2}`)
	if _, code := errorBody(t, b); st != 504 || code != "timeout" || time.Since(start) > 3*time.Second {
		t.Errorf("hang = %d %s after %v, want 504 timeout at ~200ms", st, b, time.Since(start))
	}
	st, hdr, b := e.do("POST", "/invoke/down", `{}`)
	if _, code := errorBody(t, b); st != 502 || code != "upstream_error" || hdr.Get("X-Invocation-Attempts") != "3" {
		t.Errorf("down = %d %s %v, want 502 upstream_error after 3", st, b, hdr)
	}
	st, hdr, b = e.do("POST", "/invoke/teapot", `{}`)
	if st != 418 || string(b) != "short and stout" || hdr.Get("Content-Type") != "text/plain" {
		t.Errorf("teapot = %d %q %v, want the function's own answer", st, b, hdr)
	}
}

func TestRetryTwice503ThenSuccess(t *testing.T) {
	e := newEdge(t, nil)
	var n atomic.Int64
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 != 0 { // 503, 503, 200, 503, 503, 200, ...
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	e.register(fmt.Sprintf(`{"name":"flaky","endpoint":%q,"retry":{"backoff_base":0.005,"backoff_cap":0.02}}`, fn.URL))
	st, hdr, b := e.do("POST", "/invoke/flaky", `{"payload":{}}`)
	if st != 200 || hdr.Get("X-Invocation-Attempts") != "3" || string(b) != `{"ok":true}` {
		t.Fatalf("sync = %d %s attempts %s", st, b, hdr.Get("X-Invocation-Attempts"))
	}
	st, _, b = e.do("POST", "/invoke/flaky", `{"payload":{},"async":true,"client_id":"c1"}`)
	if st != 202 {
		t.Fatalf("async = %d %s", st, b)
	}
	d := e.rec.next(t)
	if d.Data.Status != "ok" || d.Data.Attempts != 3 || string(d.Data.Result) != `{"ok":true}` {
		t.Fatalf("delivered %s", d.Raw)
	}
}

func TestAsyncDeliversToTheRightClientOnly(t *testing.T) {
	e := newEdge(t, nil)
	fn := upperFn(t)
	e.register(fmt.Sprintf(`{"name":"upper","endpoint":%q}`, fn.URL))
	st, hdr, b := e.do("POST", "/invoke/upper", `{"payload":{"text":"async"},"client_id":"alice","async":true}`)
	var acc api.InvokeAccepted
	json.Unmarshal(b, &acc)
	if st != 202 || acc.InvocationID == "" || hdr.Get("X-Invocation-Id") != acc.InvocationID {
		t.Fatalf("async = %d %s", st, b)
	}
	d := e.rec.next(t)
	if d.ClientID != "alice" || d.Event != "function_response" || d.Data.InvocationID != acc.InvocationID {
		t.Fatalf("delivery = %+v", d)
	}
	var result map[string]string
	if err := json.Unmarshal(d.Data.Result, &result); err != nil || result["text"] != "ASYNC" || result["client"] != "alice" {
		t.Fatalf("result = %s (%v)", d.Data.Result, err)
	}
	if d.Data.Function != "upper" || d.Data.Status != "ok" || d.Data.HTTPStatus != 200 || d.Data.Attempts != 1 || len(d.Data.TraceID) != 32 || d.Data.Error != nil {
		t.Fatalf("event = %s", d.Raw)
	}
	if !strings.Contains(d.Raw, `"duration_ms":`) {
		t.Fatalf("event lacks duration_ms: %s", d.Raw)
	}
	if all := e.rec.all(); len(all) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(all), all)
	}
}

func TestAsyncFailuresAreDelivered(t *testing.T) {
	e := newEdge(t, nil)
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		readAll(r)
		switch r.URL.Path {
		case "/hang":
			<-r.Context().Done()
		case "/text":
			fmt.Fprint(w, "plain words")
		default:
			w.WriteHeader(500)
			fmt.Fprint(w, `{"oops":1}`)
		}
	})
	e.register(fmt.Sprintf(`{"name":"hang","endpoint":%q,"timeout":0.2}`, fn.URL+"/hang"))
	e.register(fmt.Sprintf(`{"name":"boom","endpoint":%q}`, fn.URL+"/boom"))
	e.register(fmt.Sprintf(`{"name":"text","endpoint":%q}`, fn.URL+"/text"))

	e.do("POST", "/invoke/hang", `{"client_id":"bob","async":true}`)
	d := e.rec.next(t)
	if d.ClientID != "bob" || d.Data.Status != "error" || d.Data.Error == nil || d.Data.Error.Code != "timeout" || d.Data.Result != nil {
		t.Fatalf("hang delivered %s", d.Raw)
	}
	e.do("POST", "/invoke/boom", `{"client_id":"bob","async":true}`)
	d = e.rec.next(t)
	if d.Data.Status != "error" || d.Data.HTTPStatus != 500 || d.Data.Error.Code != "function_error" {
		t.Fatalf("boom delivered %s", d.Raw)
	}
	e.do("POST", "/invoke/text", `{"client_id":"bob","async":true}`)
	d = e.rec.next(t)
	if string(d.Data.Result) != `"plain words"` {
		t.Fatalf("text delivered %s, want the body as a JSON string", d.Raw)
	}
}

func TestBreakerThroughAPI(t *testing.T) {
	e := newEdge(t, nil)
	var healthy atomic.Bool
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(500)
			return
		}
		fmt.Fprint(w, "fine")
	})
	e.register(fmt.Sprintf(`{"name":"shaky","endpoint":%q,"breaker":{"consecutive_failures":3,"open_duration":0.2}}`, fn.URL))
	for range 3 {
		if st, _, b := e.do("POST", "/invoke/shaky", `{}`); st != 500 {
			t.Fatalf("failing call = %d %s", st, b)
		}
	}
	seen := fn.Hits.Load()
	st, _, b := e.do("POST", "/invoke/shaky", `{}`)
	if _, code := errorBody(t, b); st != 503 || code != "circuit_open" || fn.Hits.Load() != seen {
		t.Fatalf("open breaker = %d %s, function hits %d->%d", st, b, seen, fn.Hits.Load())
	}
	_, _, b = e.do("GET", "/admin/functions/shaky", "")
	if !strings.Contains(string(b), `"breaker_state":"open"`) || !strings.Contains(string(b), `"healthy":false`) {
		t.Fatalf("admin view while open: %s", b)
	}
	healthy.Store(true)
	testutil.WaitFor(t, "half-open", func() bool {
		_, _, b := e.do("GET", "/admin/functions/shaky", "")
		return strings.Contains(string(b), `"breaker_state":"half-open"`)
	})
	if st, _, b := e.do("POST", "/invoke/shaky", `{}`); st != 200 || string(b) != "fine" {
		t.Fatalf("probe = %d %s", st, b)
	}
	_, _, b = e.do("GET", "/admin/functions/shaky", "")
	if !strings.Contains(string(b), `"breaker_state":"closed"`) {
		t.Fatalf("admin view after probe: %s", b)
	}
}

func TestTwoEndpointsOneDownThroughAPI(t *testing.T) {
	e := newEdge(t, nil)
	fn := upperFn(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/upper"
	ln.Close()
	e.register(fmt.Sprintf(`{"name":"pair","endpoints":[%q,%q],"retry":{"backoff_base":"1ms","backoff_cap":"5ms"}}`, dead, fn.URL))
	for i := range 30 {
		if st, _, b := e.do("POST", "/invoke/pair", `{"payload":{"text":"x"}}`); st != 200 {
			t.Fatalf("call %d = %d %s", i, st, b)
		}
	}
}

func TestHangingFunctionLeavesNothingBehind(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		e := newEdge(t, nil)
		fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
			readAll(r)
			<-r.Context().Done()
		})
		e.register(fmt.Sprintf(`{"name":"hang","endpoint":%q,"timeout":0.3}`, fn.URL))
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if st, _, b := e.do("POST", "/invoke/hang", `{}`); st != 504 {
					t.Errorf("hang = %d %s", st, b)
				}
			})
		}
		e.do("POST", "/invoke/hang", `{"client_id":"c","async":true}`)
		wg.Wait()
		if d := e.rec.next(t); d.Data.Error == nil || d.Data.Error.Code != "timeout" {
			t.Errorf("async hang delivered %s", d.Raw)
		}
		e.stop()
		fn.Close()
	}()
	testutil.WaitGoroutines(t, baseline)
}

func TestAsyncLimitAndClose(t *testing.T) {
	release := make(chan struct{})
	e := newEdge(t, func(c *api.Config) { c.MaxAsync = 2 })
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		readAll(r)
		<-release
	})
	e.register(fmt.Sprintf(`{"name":"slow","endpoint":%q}`, fn.URL))
	for range 2 {
		if st, _, b := e.do("POST", "/invoke/slow", `{"client_id":"c","async":true}`); st != 202 {
			t.Fatalf("async = %d %s", st, b)
		}
	}
	st, _, b := e.do("POST", "/invoke/slow", `{"client_id":"c","async":true}`)
	if _, code := errorBody(t, b); st != 429 || code != "too_many_invocations" {
		t.Fatalf("third async = %d %s, want 429", st, b)
	}
	testutil.WaitFor(t, "both calls at the function", func() bool { return fn.Hits.Load() == 2 })

	closed := make(chan error, 1)
	go func() { closed <- e.api.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with invocations in flight", err)
	default:
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the invocations ended")
	}
	if n := len(e.rec.all()); n != 2 {
		t.Fatalf("%d deliveries after Close, want 2", n)
	}
	st, _, b = e.do("POST", "/invoke/slow", `{"client_id":"c","async":true}`)
	if _, code := errorBody(t, b); st != 503 || code != "shutting_down" {
		t.Fatalf("async after Close = %d %s", st, b)
	}
}

func TestCloseTimeoutCancelsAndStillDelivers(t *testing.T) {
	e := newEdge(t, nil)
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		readAll(r)
		<-r.Context().Done()
	})
	e.register(fmt.Sprintf(`{"name":"stuck","endpoint":%q,"timeout":2,"retry":{"attempt_timeout":0.2,"max_attempts":10,"backoff_base":0.3,"backoff_cap":0.3}}`, fn.URL))
	e.do("POST", "/invoke/stuck", `{"client_id":"c","async":true}`)
	testutil.WaitFor(t, "the call to start", func() bool { return fn.Hits.Load() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.api.Close(ctx); err == nil {
		t.Fatal("Close reported success before the invocation ended")
	}
	d := e.rec.next(t)
	if d.Data.Error == nil || (d.Data.Error.Code != "canceled" && d.Data.Error.Code != "timeout") {
		t.Fatalf("delivered %s, want a canceled failure", d.Raw)
	}
}

// TestThousandConcurrentAsync holds 1,000 async invocations in flight at once (the function
// answers only when all have arrived) for 100 clients, and checks each result reaches its own
// client exactly once.
func TestThousandConcurrentAsync(t *testing.T) {
	const total, clients = 1000, 100
	baseline := runtime.NumGoroutine()
	func() {
		e := newEdge(t, nil)
		var arrived atomic.Int64
		allIn := make(chan struct{})
		fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
			body := readAll(r)
			if arrived.Add(1) == total {
				close(allIn)
			}
			select {
			case <-allIn:
			case <-time.After(30 * time.Second):
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"echo":%s,"client":%q}`, body, r.Header.Get("X-Client-Id"))
		})
		e.register(fmt.Sprintf(`{"name":"echo","endpoint":%q,"timeout":60}`, fn.URL))

		var mu sync.Mutex
		sent := make(map[string]string, total) // invocation ID -> client
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				client := fmt.Sprintf("client-%03d", c)
				for i := range total / clients {
					st, _, b := e.do("POST", "/invoke/echo", fmt.Sprintf(`{"payload":{"n":%d},"client_id":%q,"async":true}`, i, client))
					var acc api.InvokeAccepted
					if st != 202 || json.Unmarshal(b, &acc) != nil {
						t.Errorf("async = %d %s", st, b)
						return
					}
					mu.Lock()
					sent[acc.InvocationID] = client
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		select {
		case <-allIn:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d invocations reached the function together", arrived.Load(), total)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.api.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		got := e.rec.all()
		if len(got) != total || len(sent) != total {
			t.Fatalf("%d deliveries for %d invocations, want %d", len(got), len(sent), total)
		}
		seen := make(map[string]bool, total)
		for _, d := range got {
			id := d.Data.InvocationID
			if seen[id] {
				t.Fatalf("invocation %s delivered twice", id)
			}
			seen[id] = true
			if sent[id] != d.ClientID || d.Data.Status != "ok" || !strings.Contains(string(d.Data.Result), `"client":"`+d.ClientID+`"`) {
				t.Fatalf("delivery %s to %s, sent by %s", d.Raw, d.ClientID, sent[id])
			}
		}
		e.stop()
		fn.Close()
	}()
	testutil.WaitGoroutines(t, baseline)
}
