package api_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/internal/testutil"
)

// seenParents is what a function saw of its callers' traces: the traceparent header of each call.
type seenParents struct {
	mu  sync.Mutex
	all []trace.SpanContext
}

func (s *seenParents) add(r *http.Request) {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
	s.mu.Lock()
	s.all = append(s.all, sc)
	s.mu.Unlock()
}

func (s *seenParents) take() []trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.all
	s.all = nil
	return out
}

// TestRetriedInvokeIsOneTrace: an invoke that takes two attempts (503, then 200) is one "invoke <fn>"
// span in the caller's trace, child of the caller's span, with one child span per attempt; the
// function receives a traceparent on both attempts, in that trace, whose parent is the attempt's span.
// Without a caller trace the invoke starts its own, which the function sees too; an async invoke
// reports the caller's trace in function_response.
func TestRetriedInvokeIsOneTrace(t *testing.T) {
	rec := testutil.RecordSpans(t)
	e := newEdge(t, nil)
	var n atomic.Int64
	var seen seenParents
	fn := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		if n.Add(1)%2 == 1 { // 503, 200, 503, 200, ...
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	e.register(fmt.Sprintf(`{"name":"flaky","endpoint":%q,"retry":{"backoff_base":0.005,"backoff_cap":0.02}}`, fn.URL))

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tid, _ := trace.TraceIDFromHex(callerTrace)
	sid, _ := trace.SpanIDFromHex(callerSpan)
	st, hdr, b := e.do("POST", "/invoke/flaky", `{"payload":{}}`, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if st != 200 || hdr.Get("X-Invocation-Attempts") != "2" {
		t.Fatalf("invoke = %d %s attempts %s; want 200 after 2", st, b, hdr.Get("X-Invocation-Attempts"))
	}
	inv, attempts := invokeSpans(t, rec, tid, "flaky")
	if inv.Parent().SpanID() != sid || !inv.Parent().IsRemote() {
		t.Errorf("invoke span parent %s (remote %v); want the caller's span %s", inv.Parent().SpanID(), inv.Parent().IsRemote(), sid)
	}
	checkAttempts(t, inv, attempts, seen.take())

	// No traceparent: the invoke is the root of its own trace, and the function still gets one.
	st, _, b = e.do("POST", "/invoke/flaky", `{"payload":{}}`)
	if st != 200 {
		t.Fatalf("untraced invoke = %d %s", st, b)
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "invoke flaky" && s.SpanContext().TraceID() != tid {
			roots = append(roots, s)
		}
	}
	if len(roots) != 1 || roots[0].Parent().IsValid() {
		t.Fatalf("untraced invoke: %d spans outside the caller's trace, want 1 root", len(roots))
	}
	inv, attempts = invokeSpans(t, rec, roots[0].SpanContext().TraceID(), "flaky")
	checkAttempts(t, inv, attempts, seen.take())

	// Async: function_response carries the caller's trace ID.
	const asyncTrace = "0af7651916cd43dd8448eb211c80319c"
	st, _, b = e.do("POST", "/invoke/flaky", `{"payload":{},"async":true,"client_id":"c1"}`, "traceparent", "00-"+asyncTrace+"-b7ad6b7169203331-01")
	if st != 202 {
		t.Fatalf("async = %d %s", st, b)
	}
	d := e.rec.next(t)
	if d.Data.TraceID != asyncTrace || d.Data.Attempts != 2 || d.Data.Status != "ok" {
		t.Fatalf("function_response %s; want trace_id %s after 2 attempts", d.Raw, asyncTrace)
	}
	atid, _ := trace.TraceIDFromHex(asyncTrace)
	inv, attempts = invokeSpans(t, rec, atid, "flaky")
	checkAttempts(t, inv, attempts, seen.take())
	// The result's publish runs in the caller's trace, beside the invoke span, not on a context of its own.
	if d.Span.TraceID() != atid || d.Span.SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("Deliver ran in span %s/%s; want the caller's %s/b7ad6b7169203331", d.Span.TraceID(), d.Span.SpanID(), atid)
	}
}

// invokeSpans returns trace tid's one "invoke <fn>" span and its attempt spans, oldest first.
func invokeSpans(t *testing.T, rec *tracetest.SpanRecorder, tid trace.TraceID, fn string) (sdktrace.ReadOnlySpan, []sdktrace.ReadOnlySpan) {
	t.Helper()
	var inv []sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != tid {
			continue
		}
		switch s.Name() {
		case "invoke " + fn:
			inv = append(inv, s)
		case "invoke " + fn + " attempt":
			attempts = append(attempts, s)
		}
	}
	if len(inv) != 1 {
		t.Fatalf("trace %s has %d invoke spans; want 1", tid, len(inv))
	}
	return inv[0], attempts
}

// checkAttempts: two attempt spans, children of the invoke span, each the parent of the traceparent
// the function received on that attempt.
func checkAttempts(t *testing.T, inv sdktrace.ReadOnlySpan, attempts []sdktrace.ReadOnlySpan, seen []trace.SpanContext) {
	t.Helper()
	tid := inv.SpanContext().TraceID()
	if len(attempts) != 2 {
		t.Fatalf("trace %s: %d attempt spans; want 2", tid, len(attempts))
	}
	if len(seen) != 2 {
		t.Fatalf("the function was called %d times; want 2", len(seen))
	}
	ids := map[trace.SpanID]bool{}
	for _, a := range attempts {
		if a.Parent().SpanID() != inv.SpanContext().SpanID() || a.Parent().IsRemote() {
			t.Errorf("attempt span %s has parent %s; want the invoke span %s", a.SpanContext().SpanID(), a.Parent().SpanID(), inv.SpanContext().SpanID())
		}
		if a.SpanKind() != trace.SpanKindClient {
			t.Errorf("attempt span kind %v; want client", a.SpanKind())
		}
		ids[a.SpanContext().SpanID()] = true
	}
	for i, sc := range seen {
		if sc.TraceID() != tid {
			t.Errorf("call %d: the function saw trace %s; want %s", i+1, sc.TraceID(), tid)
		}
		if !ids[sc.SpanID()] {
			t.Errorf("call %d: the function's parent span %s is not an attempt span", i+1, sc.SpanID())
		}
		delete(ids, sc.SpanID())
	}
}
