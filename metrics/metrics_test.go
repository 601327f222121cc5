package metrics

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// wantMetrics is every metric the issue asks for, with its type: the contract dashboards and
// alerts are written against.
var wantMetrics = map[string]dto.MetricType{
	"sseedge_grip_requests_total":                       dto.MetricType_COUNTER,
	"sseedge_grip_publish_items_total":                  dto.MetricType_COUNTER,
	"sseedge_grip_publish_refused_total":                dto.MetricType_COUNTER,
	"sseedge_grip_keepalives_total":                     dto.MetricType_COUNTER,
	"sseedge_connections":                               dto.MetricType_GAUGE,
	"sseedge_connections_opened_total":                  dto.MetricType_COUNTER,
	"sseedge_connections_closed_total":                  dto.MetricType_COUNTER,
	"sseedge_events_published_total":                    dto.MetricType_COUNTER,
	"sseedge_frames_sent_total":                         dto.MetricType_COUNTER,
	"sseedge_bytes_sent_total":                          dto.MetricType_COUNTER,
	"sseedge_delivery_latency_seconds":                  dto.MetricType_HISTOGRAM,
	"sseedge_heartbeat_batch_seconds":                   dto.MetricType_HISTOGRAM,
	"sseedge_replayed_events_total":                     dto.MetricType_COUNTER,
	"sseedge_resets_total":                              dto.MetricType_COUNTER,
	"sseedge_stream_topic_subscriptions_total":          dto.MetricType_COUNTER,
	"sseedge_stream_topic_resets_total":                 dto.MetricType_COUNTER,
	"sseedge_stream_bad_cursors_total":                  dto.MetricType_COUNTER,
	"sseedge_stream_topic_position_failures_total":      dto.MetricType_COUNTER,
	"sseedge_client_subscription_changes_total":         dto.MetricType_COUNTER,
	"sseedge_client_subscription_change_failures_total": dto.MetricType_COUNTER,
	"sseedge_client_subscription_reads_failed_total":    dto.MetricType_COUNTER,
	"sseedge_bus_recovered_events_total":                dto.MetricType_COUNTER,
	"sseedge_bus_unrecovered_gaps_total":                dto.MetricType_COUNTER,
	"sseedge_slow_consumers_total":                      dto.MetricType_COUNTER,
	"sseedge_requests_rejected_total":                   dto.MetricType_COUNTER,
	"sseedge_invocations_total":                         dto.MetricType_COUNTER,
	"sseedge_invocation_duration_seconds":               dto.MetricType_HISTOGRAM,
	"sseedge_invocation_attempts":                       dto.MetricType_HISTOGRAM,
	"sseedge_breaker_state":                             dto.MetricType_GAUGE,
	"sseedge_redis_command_duration_seconds":            dto.MetricType_HISTOGRAM,
	"sseedge_redis_cache_hits_total":                    dto.MetricType_COUNTER,
	"sseedge_redis_cache_misses_total":                  dto.MetricType_COUNTER,
	"sseedge_redis_up":                                  dto.MetricType_GAUGE,
	"sseedge_history_bytes":                             dto.MetricType_GAUGE,
	"sseedge_history_streams":                           dto.MetricType_GAUGE,
	"sseedge_history_evicted_total":                     dto.MetricType_COUNTER,
	"sseedge_mcp_sessions_evicted_total":                dto.MetricType_COUNTER,
	"sseedge_stream_tokens_expired_total":               dto.MetricType_COUNTER,
	"sseedge_stream_token_refreshes_total":              dto.MetricType_COUNTER,
	"sseedge_bus_probe_seconds":                         dto.MetricType_HISTOGRAM,
	"sseedge_bus_probe_failures_total":                  dto.MetricType_COUNTER,
	"sseedge_bus_messages_received_total":               dto.MetricType_COUNTER,
	"sseedge_bus_messages_unwanted_total":               dto.MetricType_COUNTER,
	"sseedge_bus_subscriptions":                         dto.MetricType_GAUGE,
	"sseedge_bus_subscribe_commands_total":              dto.MetricType_COUNTER,
	"sseedge_bus_unsubscribe_commands_total":            dto.MetricType_COUNTER,

	"sseedge_resume_waits_total":                  dto.MetricType_COUNTER,
	"sseedge_resume_read_retries_total":           dto.MetricType_COUNTER,
	"sseedge_resume_history_unavailable_total":    dto.MetricType_COUNTER,
	"sseedge_publish_expired_total":               dto.MetricType_COUNTER,
	"sseedge_publish_outcome_unknown_total":       dto.MetricType_COUNTER,
	"sseedge_publish_idempotent_replays_total":    dto.MetricType_COUNTER,
	"sseedge_publish_idempotency_conflicts_total": dto.MetricType_COUNTER,
}

// allowedLabels is the closed set of values each label may take (function and command are open
// but capped, and checked separately).
var allowedLabels = map[string][]string{
	"kind":    {"sse", "topic", "mcp"},
	"reason":  {"client", "slow_consumer", "shutdown", "error", "timeout", "bad_request", "too_large", "rate_limited", "unauthorized", "forbidden", "not_found", "address_limit", "store_full"},
	"outcome": append([]string{"ok", "error", "timeout", "circuit_open", "rejected", "refused"}, gripOutcomes()...),
	"action":  {"send", "close"},
	"code":    gripPublishCodes(),
}

// touchAll makes one observation on every metric, so that vectors have children and every
// family appears in a gather.
func touchAll(m *Metrics) {
	for k := Kind(0); k < numKinds; k++ {
		m.ConnOpened(k)
	}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		m.ConnClosed(KindSSE, r)
	}
	m.EventPublished()
	m.FramesSent(1, 42)
	m.FramesSent(10, 420)
	m.ObserveDelivery(3 * time.Millisecond)
	m.ObserveHeartbeatBatch(700 * time.Microsecond)
	m.EventsReplayed(5)
	m.StreamReset()
	m.BusRecovered(2)
	m.BusGapUnrecovered()
	m.SlowConsumer()
	for r := RejectReason(0); r < numRejectReasons; r++ {
		m.RequestRejected(r)
	}
	m.ObserveInvocation("echo", OutcomeOK, 12*time.Millisecond, 1)
	m.ObserveInvocation("echo", OutcomeError, 40*time.Millisecond, 3)
	m.SetBreakerState("echo", BreakerOpen)
	m.ObserveRedisCommand("GET", 300*time.Microsecond)
	m.RedisCacheHit()
	m.RedisCacheMiss()
	m.SetRedisUp(true)
	m.SetHistory(1<<20, 3, 7)
	m.MCPSessionEvicted(EvictAddressLimit)
	m.MCPSessionEvicted(EvictStoreFull)
	m.StreamTokenExpired()
	m.StreamTokenRefresh(true)
	m.StreamTokenRefresh(false)
	m.ObserveBusProbe(2 * time.Millisecond)
	m.BusProbesFailed(1)
	m.ResumeWaited()
	m.ResumeRetried()
	m.ResumeHistoryUnavailable()
	m.PublishExpired(1)
	m.PublishOutcomeUnknown(1)
	m.IdempotentPublish(false)
	m.IdempotentPublish(true)
	m.GripRequest("held")
	m.GripRequest("grip_malformed")
	m.GripRequest("not a known outcome")
	m.GripItems("send", 2)
	m.GripItems("close", 1)
	m.GripPublishRefused("grip_unauthorized")
	m.KeepAlivesSent(2)
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func TestEveryMetricRegistersAndIsExposed(t *testing.T) {
	reg := NewRegistry()
	m := New(reg)
	touchAll(m)

	if problems, err := testutil.GatherAndLint(reg); err != nil {
		t.Fatalf("lint: %v", err)
	} else {
		for _, p := range problems {
			if strings.HasPrefix(p.Metric, Namespace+"_") {
				t.Errorf("lint %s: %s", p.Metric, p.Text)
			}
		}
	}

	fams := gather(t, reg)
	for name, typ := range wantMetrics {
		mf, ok := fams[name]
		if !ok {
			t.Errorf("%s not exposed", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, mf.GetType(), typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, Namespace+"_") {
			if _, ok := wantMetrics[name]; !ok {
				t.Errorf("%s is exported but not in the documented list", name)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("NewRegistry lacks %s", name)
		}
	}

	// The exposition served to Prometheus carries every name too.
	body := scrape(t, Handler(reg))
	for name := range wantMetrics {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("exposition lacks %s", name)
		}
	}
}

func TestValuesAfterObservations(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ConnOpened(KindTopic)
	m.ConnOpened(KindTopic)
	m.ConnOpened(KindMCP)
	m.ConnClosed(KindTopic, CloseSlowConsumer)
	m.ConnClosed(KindMCP, CloseReason(200)) // unknown reason counts as error
	m.ConnOpened(Kind(9))                   // unknown kind is ignored
	m.FramesSent(1, 100)
	m.FramesSent(3, 30)
	m.FramesSent(0, 99) // nothing sent, nothing counted
	m.RequestRejected(RejectReason(99))
	m.EventsReplayed(-1)

	check := func(name string, c prometheus.Collector, want float64) {
		t.Helper()
		if got := testutil.ToFloat64(c); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("topic streams", m.conns[KindTopic], 1)
	check("mcp streams", m.conns[KindMCP], 0)
	check("topic opened", m.opened[KindTopic], 2)
	check("closed slow_consumer", m.closed[CloseSlowConsumer], 1)
	check("closed error", m.closed[CloseError], 1)
	check("frames", m.framesSent, 4)
	check("bytes", m.bytesSent, 130)
	check("rejected bad_request", m.rejected[RejectBadRequest], 1)
	check("replayed", m.replayed, 0)

	f := m.Function("resize")
	f.Invoked(OutcomeOK, 20*time.Millisecond, 1)
	f.Invoked(OutcomeCircuitOpen, 0, 0)
	f.Invoked(Outcome(77), time.Second, 2) // unknown outcome counts as error
	f.SetBreakerState(BreakerHalfOpen)
	check("resize ok", m.invocations.WithLabelValues("resize", "ok"), 1)
	check("resize circuit_open", m.invocations.WithLabelValues("resize", "circuit_open"), 1)
	check("resize error", m.invocations.WithLabelValues("resize", "error"), 1)
	check("resize breaker", m.breaker.WithLabelValues("resize"), 1)
	// circuit_open never reached the function: two durations (ok, error), not three.
	if n := testutil.CollectAndCount(m.invokeDur); n != 1 {
		t.Errorf("duration series = %d, want 1", n)
	}
	if got := histogramCount(t, reg, "sseedge_invocation_duration_seconds"); got != 2 {
		t.Errorf("durations observed = %d, want 2", got)
	}
	if got := histogramCount(t, reg, "sseedge_invocation_attempts"); got != 2 {
		t.Errorf("attempts observed = %d, want 2", got)
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range gather(t, g)[name].GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

func TestLabelValuesAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, WithMaxFunctions(8), WithMaxRedisCommands(4))
	touchAll(m)
	// A registry gone wild and code that names commands dynamically: both stay capped.
	for i := range 100 {
		m.ObserveInvocation(fmt.Sprintf("fn-%d", i), OutcomeOK, time.Millisecond, 1)
		m.SetBreakerState(fmt.Sprintf("fn-%d", i), BreakerClosed)
		m.ObserveRedisCommand(fmt.Sprintf("CMD%d", i), time.Millisecond)
	}
	if f := m.Function("fn-99"); f.Name() != OverflowLabel {
		t.Errorf("function past the cap reports as %q, want %q", f.Name(), OverflowLabel)
	}

	values := map[string]map[string]bool{}
	for _, mf := range gather(t, reg) {
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				name, value := lp.GetName(), lp.GetValue()
				if values[name] == nil {
					values[name] = map[string]bool{}
				}
				values[name][value] = true
				allowed, closed := allowedLabels[name]
				switch {
				case closed:
					if !slices.Contains(allowed, value) {
						t.Errorf("%s{%s=%q}: value outside the closed set", mf.GetName(), name, value)
					}
				case name == "function" || name == "command":
				default:
					t.Errorf("%s has unexpected label %q", mf.GetName(), name)
				}
			}
		}
	}
	if n := len(values["function"]); n > 8+1 {
		t.Errorf("%d function label values, want at most 9 (cap + overflow)", n)
	}
	if n := len(values["command"]); n > 4+1 {
		t.Errorf("%d command label values, want at most 5 (cap + overflow)", n)
	}
	if !values["function"][OverflowLabel] || !values["command"][OverflowLabel] {
		t.Errorf("names past the caps should report under %q", OverflowLabel)
	}
}

func TestForgetFunctionDropsItsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, WithMaxFunctions(1))
	m.ObserveInvocation("old", OutcomeOK, time.Millisecond, 1)
	m.ForgetFunction("old")
	m.ForgetFunction("never-registered")
	for _, mf := range gather(t, reg) {
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if lp.GetName() == "function" && lp.GetValue() == "old" {
					t.Errorf("%s still has function=old", mf.GetName())
				}
			}
		}
	}
	// The slot is free again: a new function gets its own series, not the overflow.
	if f := m.Function("new"); f.Name() != "new" {
		t.Errorf("after forget, new function reports as %q", f.Name())
	}
}

// TestHotPathDoesNotAllocate holds the edge, invoker and registry hot paths to zero allocations.
func TestHotPathDoesNotAllocate(t *testing.T) {
	m := New(prometheus.NewRegistry())
	f := m.Function("echo")
	m.ObserveRedisCommand("GET", time.Millisecond) // resolve once, as in steady state

	cases := map[string]func(){
		"ConnOpened":            func() { m.ConnOpened(KindSSE) },
		"ConnClosed":            func() { m.ConnClosed(KindSSE, CloseClient) },
		"EventPublished":        func() { m.EventPublished() },
		"FramesSent":            func() { m.FramesSent(1000, 128000) },
		"ObserveDelivery":       func() { m.ObserveDelivery(2 * time.Millisecond) },
		"ObserveHeartbeatBatch": func() { m.ObserveHeartbeatBatch(time.Millisecond) },
		"EventsReplayed":        func() { m.EventsReplayed(3) },
		"StreamReset":           func() { m.StreamReset() },
		"SlowConsumer":          func() { m.SlowConsumer() },
		"RequestRejected":       func() { m.RequestRejected(RejectRateLimited) },
		"Function.Invoked":      func() { f.Invoked(OutcomeOK, 5*time.Millisecond, 1) },
		"Function.SetBreaker":   func() { f.SetBreakerState(BreakerOpen) },
		"Function (cached)":     func() { _ = m.Function("echo") },
		"ObserveInvocation":     func() { m.ObserveInvocation("echo", OutcomeTimeout, time.Second, 2) },
		"SetBreakerState":       func() { m.SetBreakerState("echo", BreakerClosed) },
		"ObserveRedisCommand":   func() { m.ObserveRedisCommand("GET", time.Millisecond) },
		"RedisCacheHit":         func() { m.RedisCacheHit() },
		"RedisCacheMiss":        func() { m.RedisCacheMiss() },
		"SetRedisUp":            func() { m.SetRedisUp(true) },
	}
	for name, fn := range cases {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s allocates %v times per call, want 0", name, n)
		}
	}
}

// TestNilMetricsIsSafe lets packages run without metrics: every method of a nil *Metrics, and of
// the nil *Function it hands out, is a no-op.
func TestNilMetricsIsSafe(t *testing.T) {
	var m *Metrics
	touchAll(m)
	m.ForgetFunction("echo")
	f := m.Function("echo")
	if f != nil {
		t.Fatalf("nil Metrics returned a Function")
	}
	f.Invoked(OutcomeOK, time.Second, 1)
	f.SetBreakerState(BreakerOpen)
	if f.Name() != "" {
		t.Errorf("nil Function has a name")
	}
	if n := testing.AllocsPerRun(100, func() { m.FramesSent(1, 1); m.ConnOpened(KindSSE) }); n != 0 {
		t.Errorf("nil Metrics allocates %v", n)
	}
}

func TestNewWithoutRegistry(t *testing.T) {
	m := New(nil)
	touchAll(m)
	if got := testutil.ToFloat64(m.eventsPublished); got != 1 {
		t.Errorf("unregistered counter = %v, want 1", got)
	}
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	New(reg)
}

func TestEnumStringsAreTheLabelValues(t *testing.T) {
	var kinds, closes, rejects, outcomes []string
	for k := Kind(0); k < numKinds; k++ {
		kinds = append(kinds, k.String())
	}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		closes = append(closes, r.String())
	}
	for r := RejectReason(0); r < numRejectReasons; r++ {
		rejects = append(rejects, r.String())
	}
	for o := Outcome(0); o < numOutcomes; o++ {
		outcomes = append(outcomes, o.String())
	}
	eq := func(name string, got, want []string) {
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	eq("kinds", kinds, []string{"sse", "topic", "mcp"})
	eq("close reasons", closes, []string{"client", "slow_consumer", "shutdown", "error", "timeout"})
	eq("reject reasons", rejects, []string{"bad_request", "too_large", "rate_limited", "unauthorized", "forbidden", "not_found"})
	eq("outcomes", outcomes, []string{"ok", "error", "timeout", "circuit_open", "rejected"})
	for _, s := range []string{numKinds.String(), numCloseReasons.String(), numRejectReasons.String(), numOutcomes.String(), BreakerState(9).String()} {
		if s != "unknown" {
			t.Errorf("out-of-range enum names itself %q", s)
		}
	}
	if BreakerClosed.String() != "closed" || BreakerHalfOpen.String() != "half-open" || BreakerOpen.String() != "open" {
		t.Error("breaker state names")
	}
}

func TestHandlerServesExposition(t *testing.T) {
	reg := NewRegistry()
	touchAll(New(reg))
	h := Handler(reg)

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/metrics")
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	h(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	if ct := string(ctx.Response.Header.ContentType()); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	body := string(ctx.Response.Body())
	for _, want := range []string{
		`sseedge_connections{kind="sse"}`,
		`sseedge_invocations_total{function="echo",outcome="ok"} 1`,
		`sseedge_delivery_latency_seconds_bucket{le="0.005"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}

	// OpenMetrics when the scraper asks for it (Prometheus does).
	var om fasthttp.RequestCtx
	om.Request.SetRequestURI("/metrics")
	om.Request.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	h(&om)
	if ct := string(om.Response.Header.ContentType()); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("openmetrics content type %q", ct)
	}
}

func scrape(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/metrics")
	h(&ctx)
	return "\n" + string(ctx.Response.Body()) // so every "# TYPE" line follows a newline
}
