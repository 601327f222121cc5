package redisengine_test

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
)

// TestPublishThroughput measures, when SSEEDGE_MEASURE is set, publishes per second through a hub into
// one Redis, single and in batches of 100 to 4 roots, beside memory mode in the same run. It is a
// measurement, not a check: it fails only when publishing fails.
func TestPublishThroughput(t *testing.T) {
	if os.Getenv("SSEEDGE_MEASURE") == "" {
		t.Skip("a measurement: set SSEEDGE_MEASURE=1")
	}
	const d = 3 * time.Second
	run := func(name string, workers int, publish func(w, i int) (int, error)) {
		var n atomic.Int64
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := 0; time.Now().Before(stop); i++ {
					k, err := publish(w, i)
					if err != nil {
						t.Error(err)
						return
					}
					n.Add(int64(k))
				}
			})
		}
		wg.Wait()
		t.Logf("%s: %.0f events/s", name, float64(n.Load())/d.Seconds())
	}
	roots := []string{"/r0", "/r1", "/r2", "/r3"}
	mem := fanout.NewHub(fanout.Config{})
	run("memory, single", 16, func(w, i int) (int, error) {
		_, _, err := mem.Publish(t.Context(), roots[i%4], fanout.Event{Data: []byte("x" + strconv.Itoa(i))})
		return 1, err
	})
	n := newNode(t, []string{redistest.StartSingle(t).Addr()})
	run("redis, single", 16, func(w, i int) (int, error) {
		_, _, err := n.hub.Publish(t.Context(), roots[i%4], fanout.Event{Data: []byte("x" + strconv.Itoa(i))})
		return 1, err
	})
	run("redis, batches of 100", 4, func(w, i int) (int, error) {
		items := make([]fanout.BatchItem, 100)
		for j := range items {
			items[j] = fanout.BatchItem{Key: roots[j%4], Event: fanout.Event{Data: []byte("x" + strconv.Itoa(j))}}
		}
		for _, r := range n.hub.PublishBatch(t.Context(), items) {
			if r.Err != nil {
				return 0, r.Err
			}
		}
		return len(items), nil
	})
}

// TestSubscriptionCost measures, when SSEEDGE_MEASURE is set, what a watched root costs a node in
// memory and goroutines. The roots of a partition share its dedicated pub/sub connection, made at
// Start, so the goroutines grow with the partitions (a connection's reader and writer and the watch of
// its end), never with the roots. It reports the node with its connections, then 10,000 watched
// roots and 10,000 more, with the connections made by the engine's client (rueidis's default
// buffers) and by a pub/sub client as redisx makes it.
func TestSubscriptionCost(t *testing.T) {
	if os.Getenv("SSEEDGE_MEASURE") == "" {
		t.Skip("a measurement: set SSEEDGE_MEASURE=1")
	}
	addrs := []string{redistest.StartSingle(t).Addr()}
	t.Run("engine client", func(t *testing.T) { measureRoots(t, addrs, nil) })
	t.Run("pubsub client", func(t *testing.T) {
		pubsub, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true,
			ReadBufferEachConn: redisx.PubSubBuffer, WriteBufferEachConn: redisx.PubSubBuffer, RingScaleEachConn: redisx.PubSubRingScale})
		if err != nil {
			t.Fatal(err)
		}
		measureRoots(t, addrs, pubsub)
	})
}

// measureRoots starts a node, watches 10,000 roots on it, then 10,000 more, and reports what each
// step cost.
func measureRoots(t *testing.T, addrs []string, pubsub rueidis.Client) {
	const roots = 10000
	inUse := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapInuse + m.StackInuse)
	}
	m0, g0 := inUse(), runtime.NumGoroutine()
	n := newNodeWith(t, addrs, pubsub)
	waitFor(t, "the partitions' connections", func() bool { return n.eng.PubSubConnections() == testPartitions })
	watch := func(from, to int) {
		for i := from; i < to; i++ {
			n.hub.Subscribe("/c"+strconv.Itoa(i), newRecorder(), false, "")
		}
		for i := from; i < to; i++ {
			if err := n.eng.Ready(t.Context(), "t", "/c"+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m1, g1 := inUse(), runtime.NumGoroutine()
	watch(0, roots)
	m2, g2 := inUse(), runtime.NumGoroutine()
	watch(roots, 2*roots)
	m3, g3 := inUse(), runtime.NumGoroutine()
	t.Logf("node started (client, engine, hub, %d partitions' connections): %d goroutines, %d KiB", testPartitions, g1-g0, (m1-m0)>>10)
	t.Logf("%d watched roots: %d goroutines more, %.0f B of heap and stack a root (recorders included)", roots, g2-g1, float64(m2-m1)/roots)
	t.Logf("%d roots more: %d goroutines more, %.0f B a root", roots, g3-g2, float64(m3-m2)/roots)
	if g2-g1 > 4 || g3-g2 > 4 { // a history read's goroutine may not have returned yet
		t.Errorf("watched roots cost %d goroutines, then %d more; want none", g2-g1, g3-g2)
	}
}
