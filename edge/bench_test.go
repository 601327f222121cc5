package edge

import (
	"context"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/transport"
)

// benchEdge is a server whose streams are in-process structs writing to /dev/null: the whole delivery
// path (hub, stream queue, run queue, writers, writev) without sockets, so it measures sseedge's own cost
// per frame and is not bound by the 20,000 descriptors of a process.
type benchEdge struct {
	*Server
	streams []*stream
	devNull int
}

func newBenchEdge(tb testing.TB, n int, register bool) *benchEdge {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	srv, err := New(Config{Node: node.New(node.Config{Logger: log}), Logger: log, HeartbeatInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	srv.start()
	fd, err := syscall.Open("/dev/null", syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	e := &benchEdge{Server: srv, devNull: fd}
	for range n {
		st := &stream{srv: srv, fd: int32(fd), id: srv.nextID.Add(1), kind: transport.Topic, key: "/bench"}
		st.attach(srv.node.Subscribe(transport.Topic, "/bench", st, ""))
		if register {
			srv.conns.add(st)
		}
		e.streams = append(e.streams, st)
	}
	tb.Cleanup(func() {
		for _, st := range e.streams {
			srv.node.Unsubscribe(transport.Topic, st.sub)
			srv.conns.remove(st)
		}
		_ = srv.Shutdown(context.Background())
		_ = syscall.Close(fd)
	})
	return e
}

// waitWritten waits until the writers have written want bytes in all.
func (e *benchEdge) waitWritten(tb testing.TB, want uint64) {
	deadline := time.Now().Add(10 * time.Second)
	for e.framesBytes.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("written %d bytes of %d", e.framesBytes.Load(), want)
		}
		runtime.Gosched()
	}
}

var benchData = []byte(`{"t":1,"seq":1}`)

// publish sends one event to every stream and waits until each has written it.
func (e *benchEdge) publish(tb testing.TB) {
	frameLen := uint64(len(fanout.AppendFrame(nil, "1", "", benchData)))
	want := e.framesBytes.Load() + frameLen*uint64(len(e.streams))
	if _, n, err := e.node.Publish(context.Background(), transport.Topic, "/bench", fanout.Event{ID: "1", Data: benchData}); err != nil || n != len(e.streams) {
		tb.Fatalf("publish: %d subscribers, %v", n, err)
	}
	e.waitWritten(tb, want)
}

// BenchmarkBroadcast10k publishes to 10,000 streams and waits for every write: deliveries/s of the
// in-process path and allocations per delivered frame (zero: a publish allocates its frame once).
func BenchmarkBroadcast10k(b *testing.B) {
	e := newBenchEdge(b, 10000, false)
	e.publish(b) // grow the queues once
	b.ReportAllocs()
	for b.Loop() {
		e.publish(b)
	}
	n := float64(b.N * len(e.streams))
	b.ReportMetric(n/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(testing.AllocsPerRun(5, func() { e.publish(b) }))/float64(len(e.streams)), "allocs/delivery")
}

// TestBroadcastAllocsPerDelivery holds the delivery path to zero allocations per frame: a publish to
// 10,000 streams, written by the writers, may allocate a few objects in all (the frame, its ID), never
// one per stream.
func TestBroadcastAllocsPerDelivery(t *testing.T) {
	e := newBenchEdge(t, 10000, false)
	for range 3 {
		e.publish(t)
	}
	allocs := testing.AllocsPerRun(20, func() { e.publish(t) })
	if perDelivery := allocs / float64(len(e.streams)); perDelivery >= 0.01 {
		t.Errorf("%.0f allocations per publish to %d streams (%.4f per delivery); want none per delivery", allocs, len(e.streams), perDelivery)
	}
	t.Logf("%.0f allocations per publish to %d streams", allocs, len(e.streams))
}

// BenchmarkHeartbeat10k is one heartbeat tick over 10,000 registered streams, until every stream has
// written it.
func BenchmarkHeartbeat10k(b *testing.B) {
	e := newBenchEdge(b, 10000, true)
	now := time.Unix(1795395407, 0) // fixed, so every frame has the same length
	frameLen := uint64(len(fanout.AppendFrame(nil, "", "heartbeat", []byte("1795395407"))))
	tick := func() {
		want := e.framesBytes.Load() + frameLen*uint64(len(e.streams))
		e.heartbeat(now)
		e.waitWritten(b, want)
	}
	tick()
	b.ReportAllocs()
	for b.Loop() {
		tick()
	}
	b.ReportMetric(float64(b.N*len(e.streams))/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkStreamSend is the publisher's share of one delivery: queueing a frame on a stream that is
// already scheduled (so no run-queue push), as for every stream but the first of a burst.
func BenchmarkStreamSend(b *testing.B) {
	srv := &Server{cfg: Config{MaxQueueBytes: 1 << 30}, runq: newRunQueue()}
	st := &stream{srv: srv, writing: true}
	f := &fanout.Frame{Bytes: fanout.AppendFrame(nil, "1", "", benchData)}
	b.ReportAllocs()
	for b.Loop() {
		st.Send(f)
		if len(st.pending) == 1024 {
			clear(st.pending)
			st.pending, st.queued = st.pending[:0], 0
		}
	}
}
