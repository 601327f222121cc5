package redisengine_test

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
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
// memory and goroutines (each root's subscription is a rueidis Receive of its own).
func TestSubscriptionCost(t *testing.T) {
	if os.Getenv("SSEEDGE_MEASURE") == "" {
		t.Skip("a measurement: set SSEEDGE_MEASURE=1")
	}
	const roots = 10000
	n := newNode(t, []string{redistest.StartSingle(t).Addr()})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	for i := range roots {
		n.hub.Subscribe("/c"+strconv.Itoa(i), newRecorder(), false, "")
	}
	for i := range roots {
		if err := n.eng.Ready(t.Context(), "t", "/c"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	mem := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d watched roots: %d goroutines more, %.0f B of heap and stack a root (recorders included)",
		roots, runtime.NumGoroutine()-g0, float64(mem)/roots)
}
