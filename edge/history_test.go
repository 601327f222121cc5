package edge_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/metrics"
)

// gaugeValue reads one unlabelled sseedge metric from reg, or -1 if it is not there.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range fams {
		if mf.GetName() != name || len(mf.Metric) == 0 {
			continue
		}
		if g := mf.Metric[0].GetGauge(); g != nil {
			return g.GetValue()
		}
		return mf.Metric[0].GetCounter().GetValue()
	}
	return -1
}

// TestHistoryBoundsEvictOldestWithReset: the node's history is bounded in bytes and in streams across
// every topic; what goes is the oldest, whichever topic holds it, and a client resuming from it is told
// with a reset, never a silent gap. Before the bounds, history grew to HistorySize events of any size on
// every stream, freed only at the TTL (600 events of 1 MB held 624 MB).
func TestHistoryBoundsEvictOldestWithReset(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := start(t, teststack.Config{
		History:           fanout.Config{HistoryMaxBytes: 1 << 20, HistoryMaxStreams: 50},
		HeartbeatInterval: 50 * time.Millisecond,
		Metrics:           metrics.New(reg),
	})
	oldID := publish(t, srv, "/old", "", "first of all")
	big := strings.Repeat("b", 16<<10)
	var bigIDs []string
	for range 100 { // 1.6 MB against a 1 MB budget
		bigIDs = append(bigIDs, publish(t, srv, "/big", "", big))
	}

	// /old held the oldest event: it went first, and its resume says so.
	old := openSSE(t, srv.url+"/subscribe/old", http.Header{"Last-Event-Id": {oldID}})
	if ev := old.next(t); ev.Type != "reset" || !strings.Contains(ev.Data, oldID) {
		t.Fatalf("resume of /old: %+v; want a reset naming %s", ev, oldID)
	}
	old.expectNone(t, 50*time.Millisecond)

	// /big kept its newest events, as many as fit.
	s := openSSE(t, srv.url+"/subscribe/big", http.Header{"Last-Event-Id": {bigIDs[0]}})
	reset := s.next(t)
	if reset.Type != "reset" || !strings.Contains(reset.Data, `"earliest_event_id"`) {
		t.Fatalf("resume of /big from its first event: %+v; want a reset naming the earliest kept", reset)
	}
	kept := 0
	for {
		ev := s.next(t)
		if ev.Data != big {
			t.Fatalf("replayed event %d: %.60q", kept, ev.Data)
		}
		kept++
		if ev.LastEventID == bigIDs[len(bigIDs)-1] {
			break
		}
	}
	t.Logf("/big kept %d of 100 events of 16 KB under a 1 MB budget", kept)
	if kept < 30 || kept > 64 {
		t.Fatalf("/big replayed %d events; want what fits in 1 MB", kept)
	}

	// One event on each of many topics: only the newest 50 streams keep theirs.
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = publish(t, srv, fmt.Sprintf("/m%d", i), "", "x")
	}
	first := openSSE(t, srv.url+"/subscribe/m0", http.Header{"Last-Event-Id": {ids[0]}})
	if ev := first.next(t); ev.Type != "reset" || strings.Contains(ev.Data, "earliest") {
		t.Fatalf("resume of the oldest of 200 topics: %+v; want a reset, with nothing kept", ev)
	}
	last := openSSE(t, srv.url+"/subscribe/m199", http.Header{"Last-Event-Id": {"unknown"}})
	if ev := last.next(t); ev.Type != "reset" || !strings.Contains(ev.Data, ids[199]) {
		t.Fatalf("resume of the newest topic: %+v; want a reset naming its kept event", ev)
	}
	if ev := last.next(t); ev.LastEventID != ids[199] {
		t.Fatalf("the newest topic replayed %+v; want its event", ev)
	}

	// What the bounds did shows in the metrics, from the heartbeat's sweep.
	testutil.WaitFor(t, "history metrics", func() bool {
		return gaugeValue(t, reg, "sseedge_history_evicted_total") > 100 && gaugeValue(t, reg, "sseedge_history_streams") > 0
	})
	if b, n := gaugeValue(t, reg, "sseedge_history_bytes"), gaugeValue(t, reg, "sseedge_history_streams"); b > 1<<20 || n > 50 {
		t.Fatalf("history holds %v bytes in %v streams; want at most 1 MB in 50", b, n)
	}
}
