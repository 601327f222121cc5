package metrics

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otelEnv is every variable that could switch export on or redirect it; tests clear them all.
var otelEnv = []string{
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER",
	"OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_TRACES_SAMPLER",
}

func clearOtelEnv(t *testing.T) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "") // restores the original value after the test
		os.Unsetenv(k)
	}
}

func TestTracingEnabledFollowsTheStandardEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
	}
	for _, c := range cases {
		clearOtelEnv(t)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		if got := TracingEnabled(); got != c.want {
			t.Errorf("env %v: TracingEnabled = %v, want %v", c.env, got, c.want)
		}
	}
}

// TestTracingOffInstallsNoProviderButPropagates: without OTEL env, no tracer provider is installed
// (spans stay no-ops), yet an incoming traceparent is still carried on.
func TestTracingOffInstallsNoProviderButPropagates(t *testing.T) {
	clearOtelEnv(t)
	before := otel.GetTracerProvider()

	shutdown, err := SetupTracing(context.Background(), "sseedge", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("no-op shutdown: %v", err)
	}
	after := otel.GetTracerProvider()
	if after != before {
		t.Errorf("a tracer provider was installed: %T", after)
	}
	if _, ok := after.(*sdktrace.TracerProvider); ok {
		t.Error("the SDK tracer provider is installed with tracing off")
	}

	prop := otel.GetTextMapPropagator()
	for _, f := range []string{"traceparent", "baggage"} {
		if !slices.Contains(prop.Fields(), f) {
			t.Errorf("global propagator lacks %s: %v", f, prop.Fields())
		}
	}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := propagation.HeaderCarrier(http.Header{"Traceparent": {parent}})
	ctx := prop.Extract(context.Background(), in)
	ctx, span := otel.Tracer("test").Start(ctx, "invoke")
	defer span.End()
	out := propagation.HeaderCarrier(http.Header{})
	prop.Inject(ctx, out)
	if got := out.Get("traceparent"); len(got) < 36 || got[:36] != parent[:36] { // same version and trace id
		t.Errorf("traceparent not carried: got %q from %q", got, parent)
	}
}

// fakeCollector is an OTLP/HTTP trace endpoint that keeps what it receives.
type fakeCollector struct {
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
	errs []error
}

func (c *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			c.errs = append(c.errs, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err == nil {
		req := new(coltracepb.ExportTraceServiceRequest)
		if err = proto.Unmarshal(raw, req); err == nil {
			c.reqs = append(c.reqs, req)
		}
	}
	if err != nil {
		c.errs = append(c.errs, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func TestTracingExportsSpansToTheOTLPEndpoint(t *testing.T) {
	clearOtelEnv(t)
	col := &fakeCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown, err := SetupTracing(ctx, "sseedge-test", "node-7")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Fatalf("tracer provider is %T, want the SDK's", otel.GetTracerProvider())
	}

	_, span := otel.Tracer("sseedge/test").Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindServer))
	traceID := span.SpanContext().TraceID()
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.errs) > 0 {
		t.Fatalf("collector errors: %v", col.errs)
	}
	var found bool
	for _, req := range col.reqs {
		for _, rs := range req.GetResourceSpans() {
			attrs := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					if s.GetName() != "publish" {
						continue
					}
					found = true
					if trace.TraceID(s.GetTraceId()) != traceID {
						t.Errorf("exported trace id %x, want %s", s.GetTraceId(), traceID)
					}
					if attrs["service.name"] != "sseedge-test" || attrs["service.instance.id"] != "node-7" {
						t.Errorf("resource attributes %v", attrs)
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("span not exported; collector got %d requests", len(col.reqs))
	}
}
