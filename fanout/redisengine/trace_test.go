package redisengine_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/metrics"
)

// tracedNode is a node whose engine reports spans to tp and Redis timings to its own registry.
func tracedNode(t *testing.T, addr string, tp trace.TracerProvider) (*node, *prometheus.Registry, rueidis.Client) {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eng := redisengine.New(client, redisengine.Config{Partitions: 1, HistorySize: 100,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(reg), TracerProvider: tp})
	hub := fanout.NewHub(fanout.Config{Engine: eng.Namespace("t")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); client.Close() })
	return &node{eng: eng, hub: hub}, reg, client
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.String()
	}
	return out
}

func spansNamed(rec *tracetest.SpanRecorder, name string, tid trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name && (!tid.IsValid() || s.SpanContext().TraceID() == tid) {
			out = append(out, s)
		}
	}
	return out
}

// commandCount is how many durations of command the registry observed.
func commandCount(t *testing.T, reg *prometheus.Registry, command string) uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "sseedge_redis_command_duration_seconds" {
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

// TestTraceCrossesTheBus: a publish under a span makes a "redis publish" client span under it, and
// every node's "deliver" consumer span continues that trace as the child of the Redis call, whose
// traceparent the bus message carried. A resume makes a "redis history" span. Each Redis call's
// round trip is observed in sseedge_redis_command_duration_seconds.
func TestTraceCrossesTheBus(t *testing.T) {
	addr := redistest.StartSingle(t).Addr()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	a, regA, _ := tracedNode(t, addr, tp)
	b, regB, _ := tracedNode(t, addr, tp)
	ra, rb := newRecorder(), newRecorder()
	a.hub.Subscribe("/pets", ra, false, "")
	b.hub.Subscribe("/pets", rb, false, "")
	for _, n := range []*node{a, b} { // the event must come over the bus, not from the subscriptions' first read
		if err := n.eng.Ready(t.Context(), "t", "/pets"); err != nil {
			t.Fatal(err)
		}
	}

	ctx, caller := tp.Tracer("test").Start(context.Background(), "caller")
	id, _, err := a.hub.Publish(ctx, "/pets/dogs", fanout.Event{Name: "bark", Data: []byte("woof\nwoof")})
	caller.End()
	if err != nil {
		t.Fatal(err)
	}
	if got := ra.wait(t, 1); got[0] != id {
		t.Fatalf("node a got %v; want %s", got, id)
	}
	if got := rb.wait(t, 1); got[0] != id {
		t.Fatalf("node b got %v; want %s", got, id)
	}
	tid := caller.SpanContext().TraceID()

	pubs := spansNamed(rec, "redis publish", tid)
	if len(pubs) != 1 {
		t.Fatalf("%d redis publish spans in the caller's trace; want 1", len(pubs))
	}
	pub := pubs[0]
	if pub.Parent().SpanID() != caller.SpanContext().SpanID() || pub.SpanKind() != trace.SpanKindClient {
		t.Errorf("redis publish: parent %s kind %v; want %s, client", pub.Parent().SpanID(), pub.SpanKind(), caller.SpanContext().SpanID())
	}
	if at := attrs(pub); at["db.system"] != "redis" || at["db.operation"] == "" || at["sseedge.event_id"] != id {
		t.Errorf("redis publish attributes %v", at)
	}

	// Delivery spans end after the frames are queued: wait for both nodes'.
	deadline := time.Now().Add(10 * time.Second)
	var delivers []sdktrace.ReadOnlySpan
	for len(delivers) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		delivers = spansNamed(rec, "deliver", tid)
	}
	if len(delivers) != 2 {
		t.Fatalf("%d deliver spans in the caller's trace; want 2 (one per node)", len(delivers))
	}
	for _, d := range delivers {
		if d.Parent().SpanID() != pub.SpanContext().SpanID() || !d.Parent().IsRemote() || d.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("deliver: parent %s remote %v kind %v; want the redis publish span %s, remote, consumer",
				d.Parent().SpanID(), d.Parent().IsRemote(), d.SpanKind(), pub.SpanContext().SpanID())
		}
		if at := attrs(d); at["sseedge.event_id"] != id {
			t.Errorf("deliver attributes %v", at)
		}
	}

	// A resume reads the history under a "redis history" span.
	rr := newRecorder()
	if _, rep := b.hub.Subscribe("/pets", rr, true, "0-1"); !rep.Reset || rep.Frames != 1 {
		t.Fatalf("resume: %+v", rep)
	}
	hist := spansNamed(rec, "redis history", trace.TraceID{})
	if len(hist) != 1 {
		t.Fatalf("%d redis history spans; want 1", len(hist))
	}
	if at := attrs(hist[0]); at["db.system"] != "redis" || at["db.operation"] != "XRANGE" || hist[0].SpanKind() != trace.SpanKindClient {
		t.Errorf("redis history span: kind %v attributes %v", hist[0].SpanKind(), at)
	}

	if n := commandCount(t, regA, "EVALSHA"); n != 1 {
		t.Errorf("node a observed %d publish scripts; want 1", n)
	}
	// One read when its subscription to the root's channel was confirmed (rootfill.go), one by the resume.
	if n := commandCount(t, regB, "XRANGE"); n != 2 {
		t.Errorf("node b observed %d XRANGE; want 2", n)
	}
	if n := commandCount(t, regA, "SPUBLISH"); n == 0 {
		t.Error("node a observed no SPUBLISH (start probes)")
	}
}

// TestUntracedAndLegacyMessages: without a sampled trace no traceparent is carried and no deliver span is made, and
// a message in the format of nodes that predate gap detection ("ns\nkey\nid\nname\nuserID\ndata", no previous
// ID) is dropped as malformed: the next event delivered is the next real one.
func TestUntracedAndLegacyMessages(t *testing.T) {
	addr := redistest.StartSingle(t).Addr()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	a, _, client := tracedNode(t, addr, tp)
	r := newRecorder()
	a.hub.Subscribe("/old", r, false, "")

	// Watch the root's channel as another node with a stream of it would.
	bus := make(chan string, 16)
	watch, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = client.Receive(watch, client.B().Ssubscribe().Channel("sseedge:{p0}:r:t:/old").Build(), func(m rueidis.PubSubMessage) {
			if !strings.HasPrefix(m.Message, "\x00") { // not a liveness probe
				bus <- m.Message
			}
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	var msg string
	published := 0
	for deadline := time.Now().Add(10 * time.Second); ; { // publish until the watcher is subscribed
		ctx, span := tp.Tracer("test").Start(context.Background(), "unsampled")
		_, _, err := a.hub.Publish(ctx, "/old/x", fanout.Event{Data: []byte("untraced")})
		span.End()
		if err != nil {
			t.Fatal(err)
		}
		published++
		select {
		case msg = <-bus:
		case <-time.After(100 * time.Millisecond):
		}
		if msg != "" || time.Now().After(deadline) {
			break
		}
	}
	// No traceparent: the message starts with the previous event's ID, then the event fields.
	if prev, fields, ok := strings.Cut(strings.TrimPrefix(msg, "\x02"), "\n"); !strings.HasPrefix(msg, "\x02") || !ok ||
		strings.Contains(prev, "\x01") || !strings.HasPrefix(fields, "t\n/old/x\n") {
		t.Fatalf("bus message %q; want the previous ID and the event fields without a traceparent", msg)
	}
	r.wait(t, published)

	legacy := "t\n/old/y\n1700000000000-7\nlegacy\n\nline one\nline two"
	if err := client.Do(context.Background(), client.B().Spublish().Channel("sseedge:{p0}:ch").Message(legacy).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	id, _, err := a.hub.Publish(context.Background(), "/old/z", fanout.Event{Data: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.wait(t, published+1); got[published] != id {
		t.Fatalf("after a legacy message, delivered %v; want %s next (the legacy message dropped)", got, id)
	}
	if n := len(spansNamed(rec, "deliver", trace.TraceID{})); n != 0 {
		t.Errorf("%d deliver spans without a trace", n)
	}
}
