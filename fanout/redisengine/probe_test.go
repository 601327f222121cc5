package redisengine_test

import (
	"context"
	"fmt"

	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/metrics"
)

// Fast probe settings for the tests: a wedge shows within about a second.
const (
	testProbeInterval = 100 * time.Millisecond
	testProbeTimeout  = 500 * time.Millisecond
)

// newProbedNode is a node on addr with the production client settings (internal/redisx), fast
// probes, and its own metrics.
func newProbedNode(t *testing.T, addr string) (*node, *prometheus.Registry) {
	t.Helper()
	client, err := redisx.NewClient(redisx.Config{Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eng := redisengine.New(client, redisengine.Config{Partitions: 8, HistorySize: 100, Metrics: metrics.New(reg),
		ProbeInterval: testProbeInterval, ProbeTimeout: testProbeTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hub := fanout.NewHub(fanout.Config{Engine: eng.Namespace("t")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); client.Close() })
	return &node{eng: eng, hub: hub}, reg
}

// waitBus polls the node's bus state until it is up (or down), and returns how long that took.
func waitBus(t *testing.T, n *node, up bool, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for n.eng.Bus().Up != up {
		if time.Since(began) > within {
			t.Fatalf("bus up=%v after %v; want up=%v (state %+v)", !up, within, up, n.eng.Bus())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(began)
}

// counter is the value of the counter or gauge name without labels in reg (0 before it is set).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// TestProbeWedgedBus wedges node B's path to Redis (a proxy that stops forwarding, connections left
// open): B's bus goes down within the probe deadline, the failures are counted, and when the path
// returns the bus comes back by itself and B's subscriber gets what was published meanwhile, once,
// in order. A short wedge resumes on the same connections; a long one outlasts the client's write
// timeout, so rueidis drops them and dials again (through the still wedged path) until it returns.
func TestProbeWedgedBus(t *testing.T) {
	for _, wedge := range []time.Duration{time.Second, 5 * time.Second} {
		t.Run(wedge.String(), func(t *testing.T) { testWedgedBus(t, wedge) })
	}
}

func testWedgedBus(t *testing.T, wedge time.Duration) {
	testutil.LeakCheck(t)
	r := redistest.StartSingle(t)
	proxy := redistest.StartProxy(t, r.Addr())
	a := newNode(t, []string{r.Addr()})
	b, reg := newProbedNode(t, proxy.Addr())
	rec := newRecorder()
	b.hub.Subscribe("/w", rec, false, "")
	if !b.eng.Bus().Up {
		t.Fatalf("bus down after Start: %+v", b.eng.Bus())
	}
	var want []string
	publish := func(data string) {
		id, _, err := a.hub.Publish(t.Context(), "/w", fanout.Event{Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	publish("before")
	rec.wait(t, 1)

	proxy.Pause()
	wedged := time.Now()
	detected := waitBus(t, b, false, testProbeInterval+testProbeTimeout+time.Second)
	t.Logf("wedged bus detected after %v (interval %v, timeout %v)", detected, testProbeInterval, testProbeTimeout)
	if n := counter(t, reg, "sseedge_bus_probe_failures_total"); n == 0 {
		t.Fatal("sseedge_bus_probe_failures_total did not count the failed probes")
	}
	if st := b.eng.Bus(); st.Err == nil || st.Failed == 0 {
		t.Fatalf("down state without a reason: %+v", st)
	}
	for i := range 20 {
		publish(fmt.Sprintf("wedged-%d", i))
	}
	time.Sleep(time.Until(wedged.Add(wedge)))
	if b.eng.Bus().Up {
		t.Fatal("bus up while the path is still wedged")
	}

	proxy.Resume()
	recovered := waitBus(t, b, true, 15*time.Second)
	t.Logf("bus up again %v after the path returned", recovered)
	publish("after")
	got := rec.wait(t, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("B's subscriber got %v;\nwant every event once, in order: %v", got, want)
	}
}

// TestProbeRefusedWrites makes Redis refuse writes while it still answers PING (too few replicas
// for min-replicas-to-write): the bus goes down with Redis's reason, and up when writes are taken.
func TestProbeRefusedWrites(t *testing.T) {
	testutil.LeakCheck(t)
	r := redistest.StartSingle(t)
	n, _ := newProbedNode(t, r.Addr())
	if _, err := redistest.Do(r.Addr(), "CONFIG", "SET", "min-replicas-to-write", "1"); err != nil {
		t.Fatal(err)
	}
	down := waitBus(t, n, false, testProbeInterval+testProbeTimeout+time.Second)
	if st := n.eng.Bus(); st.Err == nil || !strings.Contains(st.Err.Error(), "NOREPLICAS") {
		t.Fatalf("down state %+v; want Redis's NOREPLICAS", st)
	}
	if err := n.eng.Ping(t.Context()); err != nil {
		t.Fatalf("PING: %v (the point is that PING alone would say up)", err)
	}
	if _, err := redistest.Do(r.Addr(), "CONFIG", "SET", "min-replicas-to-write", "0"); err != nil {
		t.Fatal(err)
	}
	up := waitBus(t, n, true, 5*time.Second)
	t.Logf("refused writes: bus down after %v, up %v after writes were taken again", down, up)
}
