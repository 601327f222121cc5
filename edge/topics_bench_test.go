package edge

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// openBenchMulti holds an in-process multi-topic stream on topics (writing to /dev/null) and drops the
// id-only frame its opening queued, so what stays is what a held idle stream keeps.
func (e *benchEdge) openBenchMulti(topics []string) *stream {
	st := &stream{srv: e.Server, fd: int32(e.devNull), id: e.nextID.Add(1), kind: transport.Topic, writing: true}
	e.openMulti(st, transport.Spec{Kind: transport.Topic, Topics: topics})
	st.mu.Lock()
	clear(st.pending)
	st.pending, st.queued, st.writing = nil, 0, false
	st.mu.Unlock()
	return st
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// topicCost measures the bytes one more topic costs a held multi-topic stream: n streams on k topics,
// then n on k+1, over the same topics (their hub nodes exist already, as on a node whose streams read
// popular topics), the difference per stream.
func topicCost(tb testing.TB, n, k int) float64 {
	e := newBenchEdge(tb, 0, false)
	topics := make([]string, k+1)
	for i := range topics {
		topics[i] = fmt.Sprintf("/topic%02d", i) // distinct roots: one cursor slot each
	}
	var all []*stream
	all = append(all, e.openBenchMulti(topics)) // the topics' hub nodes
	m0 := heapInUse()
	for range n {
		all = append(all, e.openBenchMulti(topics[:k]))
	}
	m1 := heapInUse()
	for range n {
		all = append(all, e.openBenchMulti(topics))
	}
	m2 := heapInUse()
	for _, st := range all {
		st.multi.Load().close()
	}
	return (float64(m2-m1) - float64(m1-m0)) / float64(n)
}

// TestTopicCostPerStream holds the cost of an extra topic on a held stream: one subscription (the hub's
// Subscription and its place in the topic's subscriber list), one keySub and one cursor slot; no
// goroutine, no timer. DESIGN.md's first bar is 96 bytes; this fails past 192 to catch regressions.
func TestTopicCostPerStream(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	for _, k := range []int{1, 4} {
		cost := topicCost(t, 5000, k)
		t.Logf("topic %d to %d: %.0f bytes per stream", k, k+1, cost)
		if cost > 192 {
			t.Errorf("an extra topic costs %.0f bytes per stream; want at most 192", cost)
		}
	}
}

// BenchmarkTopicCost reports the bytes per extra topic on a held stream (from 1 to 2 topics).
func BenchmarkTopicCost(b *testing.B) {
	var cost float64
	for b.Loop() {
		cost = topicCost(b, 2000, 1)
	}
	b.ReportMetric(cost, "bytes/topic")
}

// BenchmarkBroadcastMultiTopic10k publishes to one topic read by 10,000 streams that each read a
// second topic too, and waits for every write: a multi-topic stream's delivery writes the shared
// frame with its own cursor as the id, one small allocation per delivery.
func BenchmarkBroadcastMultiTopic10k(b *testing.B) {
	e := newBenchEdge(b, 0, false)
	streams := make([]*stream, 10000)
	for i := range streams {
		streams[i] = e.openBenchMulti([]string{"/bench", "/other"})
	}
	b.Cleanup(func() {
		for _, st := range streams {
			st.multi.Load().close()
		}
	})
	publish := func() {
		want := e.framesSent.Load() + uint64(len(streams))
		if _, _, err := e.node.Publish(context.Background(), transport.Topic, "/bench", fanout.Event{Data: benchData}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.framesSent.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("sent %d frames of %d", e.framesSent.Load(), want)
			}
			runtime.Gosched()
		}
	}
	publish()
	b.ReportAllocs()
	for b.Loop() {
		publish()
	}
	b.ReportMetric(float64(b.N*len(streams))/b.Elapsed().Seconds(), "deliveries/s")
}
