package edge_test

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// endedSpan returns the one ended span named name in trace tid, failing the test if there is none or
// several.
func endedSpan(t *testing.T, rec *tracetest.SpanRecorder, tid trace.TraceID, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name && s.SpanContext().TraceID() == tid {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %q spans in trace %s; want 1 (recorded: %d)", len(found), name, tid, len(rec.Ended()))
	}
	return found[0]
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// postTraced posts body with a traceparent header and returns the status.
func postTraced(t *testing.T, url, traceparent, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPublishSpanContinuesCallerTrace: a publish carrying a W3C traceparent is traced as a "publish"
// server span in the caller's trace, child of the caller's span, with what it did as attributes; a
// failed publish is a span with error status.
func TestPublishSpanContinuesCallerTrace(t *testing.T) {
	rec := testutil.RecordSpans(t)
	srv := start(t, teststack.Config{})
	sub := openSSE(t, srv.url+"/subscribe/pets", nil)
	client := openSSE(t, srv.url+"/sse/alice", nil)
	_ = client.next(t) // connected
	testutil.WaitFor(t, "2 streams", func() bool { st := srv.Stats(); return st.TopicStreams == 1 && st.ClientStreams == 1 })

	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
	)
	tid, _ := trace.TraceIDFromHex(callerTrace)
	sid, _ := trace.SpanIDFromHex(callerSpan)
	if code := postTraced(t, srv.url+"/publish/pets/dogs", "00-"+callerTrace+"-"+callerSpan+"-01",
		`{"event":"bark","data":"woof","id":"ev-1"}`); code != 200 {
		t.Fatalf("publish: %d", code)
	}
	if ev := sub.next(t); ev.LastEventID != "ev-1" {
		t.Fatalf("subscriber got %+v", ev)
	}

	s := endedSpan(t, rec, tid, "publish")
	if s.Parent().SpanID() != sid || !s.Parent().IsRemote() {
		t.Errorf("publish span parent %s (remote %v); want the caller's span %s", s.Parent().SpanID(), s.Parent().IsRemote(), sid)
	}
	if s.SpanKind() != trace.SpanKindServer {
		t.Errorf("publish span kind %v; want server", s.SpanKind())
	}
	if s.Status().Code == codes.Error {
		t.Errorf("publish span status %+v", s.Status())
	}
	a := spanAttrs(s)
	if a["sseedge.stream"].AsString() != "topic" || a["sseedge.topic"].AsString() != "/pets/dogs" ||
		a["sseedge.event_id"].AsString() != "ev-1" || a["sseedge.delivered"].AsInt64() != 1 {
		t.Errorf("publish span attributes %v", s.Attributes())
	}

	// A client event is the same span with the client's ID.
	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	ctid, _ := trace.TraceIDFromHex(clientTrace)
	if code := postTraced(t, srv.url+"/clients/alice/events", "00-"+clientTrace+"-b7ad6b7169203331-01",
		`{"event":"hello","data":{"n":1}}`); code != 200 {
		t.Fatalf("client event: %d", code)
	}
	_ = client.next(t)
	c := endedSpan(t, rec, ctid, "publish")
	ca := spanAttrs(c)
	if ca["sseedge.stream"].AsString() != "client" || ca["sseedge.client_id"].AsString() != "alice" ||
		ca["sseedge.event_id"].AsString() == "" || ca["sseedge.delivered"].AsInt64() != 1 {
		t.Errorf("client event span attributes %v", c.Attributes())
	}

	// A refused publish is an error span, still in the caller's trace.
	const badTrace = "11111111111111111111111111111111"
	btid, _ := trace.TraceIDFromHex(badTrace)
	if code := postTraced(t, srv.url+"/publish/pets", "00-"+badTrace+"-2222222222222222-01", `{"event":"x"}`); code != 400 {
		t.Fatalf("publish without data: %d; want 400", code)
	}
	b := endedSpan(t, rec, btid, "publish")
	if b.Status().Code != codes.Error || spanAttrs(b)["error.type"].AsString() != "missing_data" {
		t.Errorf("failed publish span status %+v attributes %v", b.Status(), b.Attributes())
	}
}
