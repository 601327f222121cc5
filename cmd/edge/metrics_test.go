package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sseedge/sseedge/internal/redistest"
)

// scrape fetches and parses a node's /metrics (text exposition).
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics Content-Type %q; want the text exposition", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// series finds the series of family name whose labels include want (label=value pairs); nil if none.
func series(fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count; -1 when the series is missing.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	m := series(fams, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// TestMetricsEndToEnd runs a real node, alone and on Redis, makes every kind of traffic the metrics of
// issue 6 describe, and checks each one in the node's own /metrics.
func TestMetricsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts edge processes")
	}
	env := []string{"HEARTBEAT_INTERVAL=200ms", "MAX_QUEUE_BYTES=65536", "SEND_BUFFER=4096"}
	t.Run("memory", func(t *testing.T) {
		fams := exercise(t, startNode(t, "metrics-memory", env...))
		// Without Redis the registry's cache counters are still exported, at zero.
		for _, name := range []string{"sseedge_redis_cache_hits_total", "sseedge_redis_cache_misses_total", "sseedge_redis_up"} {
			if v := value(fams, name); v != 0 {
				t.Errorf("%s = %v; want exported, 0", name, v)
			}
		}
	})
	t.Run("redis", func(t *testing.T) {
		r := redistest.StartSingle(t)
		fams := exercise(t, startNode(t, "metrics-redis", append(env, "REDIS_ADDR="+r.Addr())...))
		for _, cmd := range []string{"EVALSHA", "XRANGE", "GET", "PIPELINE"} { // publishes, the resume's history read, the registry read (cold), the directory refresh
			if v := value(fams, "sseedge_redis_command_duration_seconds", "command", cmd); v <= 0 {
				t.Errorf("sseedge_redis_command_duration_seconds{command=%s} count = %v; want > 0", cmd, v)
			}
		}
		if v := value(fams, "sseedge_redis_cache_hits_total"); v <= 0 {
			t.Errorf("sseedge_redis_cache_hits_total = %v; want > 0 (the second invoke reads the cached registry)", v)
		}
		if v := value(fams, "sseedge_redis_cache_misses_total"); v <= 0 {
			t.Errorf("sseedge_redis_cache_misses_total = %v; want > 0 (the first invoke reads Redis)", v)
		}
		if v := value(fams, "sseedge_redis_up"); v != 1 {
			t.Errorf("sseedge_redis_up = %v; want 1", v)
		}
	})
}

// exercise makes the traffic of every metric on node, checks what holds with or without Redis, and
// returns the final scrape.
func exercise(t *testing.T, node *edgeNode) map[string]*dto.MetricFamily {
	t.Helper()

	// Streams: a client stream, a topic stream, and a resume.
	alice := subscribe(t, node.url+"/sse/alice", "")
	if ev, _ := alice.next(t); ev.Type != "connected" {
		t.Fatalf("alice: %+v", ev)
	}
	news := subscribe(t, node.url+"/subscribe/news", "")
	var first string
	for i := range 3 {
		if code, out := request(t, "POST", node.url+"/publish/news", fmt.Sprintf(`{"event":"story","data":"%d"}`, i)); code != 200 {
			t.Fatalf("publish: %d %v", code, out)
		}
		ev, _ := news.next(t)
		if i == 0 {
			first = ev.LastEventID
		}
	}
	if code, out := request(t, "POST", node.url+"/clients/alice/events", `{"event":"note","data":{"hi":1}}`); code != 200 {
		t.Fatalf("client event: %d %v", code, out)
	}
	if ev, _ := alice.next(t); ev.Type != "note" {
		t.Fatalf("alice: %+v", ev)
	}
	resumed := subscribe(t, node.url+"/subscribe/news", first)
	for want := 1; want < 3; want++ {
		if ev, _ := resumed.next(t); ev.Data != fmt.Sprint(want) {
			t.Fatalf("resumed stream: %+v; want %d", ev, want)
		}
	}
	resumed.Close() // a client that goes away

	// Functions: one that answers, one that fails (a 500, without retries).
	fn := functionServer(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(broken.Close)
	for _, body := range []string{
		fmt.Sprintf(`{"name":"upper","endpoint":"%s/upper","timeout":5}`, fn.URL),
		fmt.Sprintf(`{"name":"broken","endpoint":"%s/x","timeout":5,"retry":{"max_attempts":1}}`, broken.URL),
	} {
		if code, out := request(t, "POST", node.url+"/admin/functions", body); code != 201 && code != 200 {
			t.Fatalf("register %s: %d %v", body, code, out)
		}
	}
	for range 2 {
		if code, out := request(t, "POST", node.url+"/invoke/upper", `{"payload":{"text":"hi"}}`); code != 200 || out["text"] != "HI" {
			t.Fatalf("invoke upper: %d %v", code, out)
		}
	}
	if code, out := request(t, "POST", node.url+"/invoke/broken", `{"payload":{}}`); code < 500 {
		t.Fatalf("invoke broken: %d %v; want a 5xx", code, out)
	}

	// A bad request.
	if code, _ := request(t, "POST", node.url+"/publish/news", `{"data":`); code != 400 {
		t.Fatalf("bad publish: %d; want 400", code)
	}

	// A slow consumer: a stream that never reads while large events pile up.
	slow, err := net.Dial("tcp", strings.TrimPrefix(node.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(slow, "GET /subscribe/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(slow).ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("slow stream: %q %v", line, err)
	}
	big := fmt.Sprintf(`{"data":"%s"}`, strings.Repeat("x", 32<<10))
	for i := 0; ; i++ {
		if code, out := request(t, "POST", node.url+"/publish/slow", big); code != 200 {
			t.Fatalf("publish to the slow stream: %d %v", code, out)
		}
		if value(scrape(t, node.url), "sseedge_connections_closed_total", "reason", "slow_consumer") > 0 {
			break
		}
		if i == 200 {
			t.Fatal("the stream that never reads was not cut off as a slow consumer after 200 32 KiB events")
		}
	}

	// Heartbeats tick every 200ms.
	time.Sleep(500 * time.Millisecond)
	fams := scrape(t, node.url)

	positive := []struct {
		name   string
		labels []string
	}{
		{"sseedge_connections", []string{"kind", "sse"}},
		{"sseedge_connections", []string{"kind", "topic"}},
		{"sseedge_connections_opened_total", []string{"kind", "sse"}},
		{"sseedge_connections_opened_total", []string{"kind", "topic"}},
		{"sseedge_connections_closed_total", []string{"reason", "client"}},
		{"sseedge_connections_closed_total", []string{"reason", "slow_consumer"}},
		{"sseedge_slow_consumers_total", nil},
		{"sseedge_events_published_total", nil},
		{"sseedge_frames_sent_total", nil},
		{"sseedge_bytes_sent_total", nil},
		{"sseedge_delivery_latency_seconds", nil},
		{"sseedge_heartbeat_batch_seconds", nil},
		{"sseedge_replayed_events_total", nil},
		{"sseedge_requests_rejected_total", []string{"reason", "bad_request"}},
		{"sseedge_invocations_total", []string{"function", "upper", "outcome", "ok"}},
		{"sseedge_invocations_total", []string{"function", "broken", "outcome", "error"}},
		{"sseedge_invocation_duration_seconds", []string{"function", "upper"}},
		{"sseedge_invocation_duration_seconds", []string{"function", "broken"}},
		{"sseedge_invocation_attempts", nil},
		{"go_goroutines", nil},
		{"process_resident_memory_bytes", nil},
	}
	for _, p := range positive {
		if v := value(fams, p.name, p.labels...); v <= 0 {
			t.Errorf("%s%v = %v; want > 0", p.name, p.labels, v)
		}
	}
	if v := value(fams, "sseedge_events_published_total"); v < 4 {
		t.Errorf("sseedge_events_published_total = %v; want at least the 4 events published", v)
	}
	if v := value(fams, "sseedge_connections", "kind", "topic"); v != 1 {
		t.Errorf("sseedge_connections{kind=topic} = %v; want 1 (news; the resumed and slow streams are gone)", v)
	}
	if v := value(fams, "sseedge_connections", "kind", "sse"); v != 1 {
		t.Errorf("sseedge_connections{kind=sse} = %v; want 1 (alice)", v)
	}
	if v := value(fams, "sseedge_replayed_events_total"); v != 2 {
		t.Errorf("sseedge_replayed_events_total = %v; want the 2 events replayed", v)
	}
	if b, f := value(fams, "sseedge_bytes_sent_total"), value(fams, "sseedge_frames_sent_total"); b < f {
		t.Errorf("%v bytes sent in %v frames", b, f)
	}
	for _, fn := range []string{"upper", "broken"} {
		if v := value(fams, "sseedge_breaker_state", "function", fn); v != 0 {
			t.Errorf("sseedge_breaker_state{function=%s} = %v; want 0 (closed)", fn, v)
		}
	}
	var goFams, procFams int
	for name := range fams {
		switch {
		case strings.HasPrefix(name, "go_"):
			goFams++
		case strings.HasPrefix(name, "process_"):
			procFams++
		}
	}
	if goFams == 0 || procFams == 0 {
		t.Errorf("%d go_ and %d process_ families; want both collectors", goFams, procFams)
	}
	return fams
}
