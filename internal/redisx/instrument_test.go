package redisx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// rig is a real Redis, a client of it, and an Instrumentation whose spans and metrics the test reads.
type rig struct {
	srv    *redistest.Server
	client rueidis.Client
	in     redisx.Instrumentation
	spans  *tracetest.SpanRecorder
	reg    *prometheus.Registry
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := redistest.StartSingle(t)
	client, err := redisx.NewClient(redisx.Config{Addr: srv.Addr()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reg := prometheus.NewRegistry()
	return &rig{srv: srv, client: client, spans: spans, reg: reg,
		in: redisx.Instrumentation{Tracer: tp.Tracer("test"), Observer: metrics.New(reg), Timeout: 500 * time.Millisecond}}
}

// observed is how many round trips of command sseedge_redis_command_duration_seconds holds.
func (r *rig) observed(t *testing.T, command string) uint64 {
	t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metrics.Namespace+"_redis_command_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == command {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// span is the one ended span called name, failing unless there is exactly one.
func (r *rig) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans called %q; want 1", len(found), name)
	}
	return found[0]
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

// TestCallOnDeadRedis: with the server killed, a call fails fast with an error that is ErrUnavailable
// (the same value as fanout's and registry's), and still leaves a client span marked as an error and
// an observation of its command. Before the kill, a nil reply is no failure.
func TestCallOnDeadRedis(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	get := func(ctx context.Context) error {
		return r.client.Do(ctx, r.client.B().Get().Key("absent").Build()).Error()
	}
	if err := r.in.Call(ctx, "lookup", "GET", get); err != nil {
		t.Fatalf("GET of a missing key: %v; want nil (a nil reply is not a failure)", err)
	}
	if s := r.span(t, "redis lookup"); s.Status().Code == codes.Error {
		t.Errorf("span of a nil reply has status %v", s.Status())
	}

	r.srv.Kill()
	began := time.Now()
	err := r.in.Call(ctx, "fetch", "GET", get)
	if !errors.Is(err, redisx.ErrUnavailable) || !errors.Is(err, fanout.ErrUnavailable) || !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("GET with Redis killed: %v; want redisx, fanout and registry ErrUnavailable", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("GET with Redis killed took %v; want it to fail fast", took)
	}
	s := r.span(t, "redis fetch")
	if s.Status().Code != codes.Error || s.SpanKind() != trace.SpanKindClient {
		t.Errorf("span of the failed call: status %v kind %v; want an error, client", s.Status(), s.SpanKind())
	}
	if at := attrs(s); at["db.system"] != "redis" || at["db.operation"] != "GET" || at["db.operation.name"] != "GET" {
		t.Errorf("span of the failed call: attributes %v", at)
	}
	if n := r.observed(t, "GET"); n != 2 {
		t.Errorf("%d GET round trips observed; want 2 (the nil reply and the failure)", n)
	}
}

// TestClientOnDeadRedis: the wrapped client gives each command its span and observation, bounds a
// context without a deadline, and its error classified is ErrUnavailable once the server is killed.
func TestClientOnDeadRedis(t *testing.T) {
	r := newRig(t)
	c := r.in.Client(r.client)
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	r.srv.Kill()
	err := c.Do(ctx, c.B().Get().Key("k").Build()).Error()
	if err == nil {
		t.Fatal("GET with Redis killed succeeded")
	}
	if err := redisx.Classify(ctx, err); !errors.Is(err, fanout.ErrUnavailable) {
		t.Fatalf("Classify(GET with Redis killed) = %v; want ErrUnavailable", err)
	}
	if s := r.span(t, "redis GET"); s.Status().Code != codes.Error {
		t.Errorf("span of the failed GET: status %v; want an error", s.Status())
	}
	if s := r.span(t, "redis SET"); s.Status().Code == codes.Error {
		t.Errorf("span of the SET: status %v; want none", s.Status())
	}
	res := c.DoMulti(ctx, c.B().Get().Key("k").Build(), c.B().Get().Key("k").Build())
	if err := redisx.Classify(ctx, res[0].Error()); !errors.Is(err, redisx.ErrUnavailable) {
		t.Fatalf("pipeline with Redis killed: %v; want ErrUnavailable", err)
	}
	if s := r.span(t, "redis PIPELINE"); s.Status().Code != codes.Error {
		t.Errorf("span of the failed pipeline: status %v; want an error", s.Status())
	}
	for cmd, want := range map[string]uint64{"SET": 1, "GET": 1, "PIPELINE": 1} {
		if n := r.observed(t, cmd); n != want {
			t.Errorf("%d %s round trips observed; want %d", n, cmd, want)
		}
	}
}

// TestClassify: a refusal retrying cannot fix (WRONGTYPE, from a real server) is not ErrUnavailable,
// nor is the caller's own cancellation; a server that hangs past the call's deadline is.
func TestClassify(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.client.Do(ctx, r.client.B().Set().Key("s").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	err := r.in.Call(ctx, "push", "LPUSH", func(ctx context.Context) error {
		return r.client.Do(ctx, r.client.B().Lpush().Key("s").Element("x").Build()).Error()
	})
	if err == nil || errors.Is(err, redisx.ErrUnavailable) || !redisx.Permanent(err) {
		t.Fatalf("LPUSH on a string: %v; want a permanent refusal, not ErrUnavailable", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = r.in.Call(cctx, "fetch", "GET", func(ctx context.Context) error {
		return r.client.Do(ctx, r.client.B().Get().Key("s").Build()).Error()
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, redisx.ErrUnavailable) {
		t.Fatalf("GET with the caller's context cancelled: %v; want context.Canceled, not ErrUnavailable", err)
	}

	r.srv.Pause()
	began := time.Now()
	err = r.in.Call(ctx, "hung", "GET", func(ctx context.Context) error {
		return r.client.Do(ctx, r.client.B().Get().Key("s").Build()).Error()
	})
	took := time.Since(began)
	r.srv.Resume()
	if !errors.Is(err, redisx.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET with Redis hung: %v; want ErrUnavailable from the call's deadline", err)
	}
	if took < r.in.Timeout || took > r.in.Timeout+2*time.Second {
		t.Errorf("GET with Redis hung failed after %v; want about the call's timeout %v", took, r.in.Timeout)
	}
}

// TestBound: a caller's sooner deadline is kept as it is; a later one or none is cut to Timeout.
func TestBound(t *testing.T) {
	in := redisx.Instrumentation{Timeout: time.Second}
	soon, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got, release := in.Bound(soon)
	release()
	if got != soon {
		t.Error("Bound replaced a context whose deadline is sooner than Timeout")
	}
	for name, ctx := range map[string]context.Context{"no deadline": context.Background(), "a later deadline": withTimeout(t, time.Hour)} {
		got, release := in.Bound(ctx)
		d, ok := got.Deadline()
		release()
		if left := time.Until(d); !ok || left > time.Second || left < 900*time.Millisecond {
			t.Errorf("%s: Bound's deadline in %v (set %v); want about Timeout", name, left, ok)
		}
	}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
