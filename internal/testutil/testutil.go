// Package testutil holds what the tests of several packages share: goroutine-leak checks, bounded
// waits for state that has no event to wait on, and an in-process span recorder.
package testutil

import (
	"context"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// WaitGoroutines polls, with a bound, until at most baseline goroutines run, and fails with a dump of
// the survivors otherwise. Goroutine exits cannot be awaited, so it polls.
func WaitGoroutines(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines still running, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LeakCheck fails the test if it leaves goroutines behind: it records the count now and waits for it
// again when the test and its other cleanups are done (cleanups run last-registered first, so call it
// before registering the cleanups that close what the test opens).
func LeakCheck(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { WaitGoroutines(t, before) })
}

// WaitFor polls cond until it holds, failing after a bound; for state that has no event to wait on.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RecordSpans makes an in-process span recorder and the W3C propagator the global ones for the test
// (components take their tracer from the global provider when they are built), restoring the previous
// ones after it.
func RecordSpans(t testing.TB) *tracetest.SpanRecorder {
	t.Helper()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	return rec
}
