package edge_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// The slowloris swarm: slowConns connections, half of which never send a byte and half of which send a
// request head that never ends, one byte per connection every dripEvery, driven by dripWorkers
// goroutines (not one per connection). Of the dripping half, half start a stream head and half an API
// head. The edge keeps what has arrived of either until the head is complete (an API head goes to
// fasthttp only then), so none of them holds a goroutine, and the deadline ends them all.
const (
	slowConns   = 1000
	dripWorkers = 8
	dripEvery   = 25 * time.Millisecond
	// dripMin is how many bytes every dripping connection has sent before measuring: past the 15 bytes
	// after which the edge can tell an API head from a stream head.
	dripMin = 24
)

// Bounds checked while the swarm is held and after it is gone.
const (
	// goroutineSlack covers the test's own goroutines (dripWorkers, the SSE reader, HTTP transports)
	// and the server's few fixed ones (writers, pollers, gopool workers that have not yet idled out).
	goroutineSlack = 64
	// heapPerConn bounds the heap one slowloris connection may cost: netpoll's input buffer and the
	// part of the head the edge keeps are each at most the 8 KiB head limit.
	heapPerConn = 16 << 10
	// heapAfter is what may stay on the heap once every slowloris connection is closed: netpoll's
	// per-poller event buffers sized to the largest batch seen (about 0.75 MiB here), the head reaper's
	// map, which does not shrink, and the fanout history of the 100 events.
	heapAfter = 2 << 20
)

type slowloris struct {
	silent  []net.Conn
	drip    [][]*dripConn // per worker
	stop    chan struct{}
	workers sync.WaitGroup
}

// dripConn sends head and then padding, a byte at a time, never the blank line that ends a head. The
// padding is not stored, so the swarm's own memory does not blur the server's heap figures.
type dripConn struct {
	net.Conn
	head string
	sent int
	dead bool // a write failed: the server closed it
}

// dripLen is as many bytes as a connection sends: at dripEvery a byte, more than any run of this test
// and less than the 8 KiB head limit, so only the deadline can end it.
const dripLen = 4096

func (c *dripConn) next() []byte {
	if c.sent < len(c.head) {
		return []byte{c.head[c.sent]}
	}
	return []byte{'a'}
}

// startSlowloris dials the swarm: first the silent half, reporting the goroutines they cost, then the
// dripping half. Dials are sequential, from the test goroutine.
func startSlowloris(t *testing.T, addr string) (sl *slowloris, silentCost int) {
	t.Helper()
	sl = &slowloris{stop: make(chan struct{}), drip: make([][]*dripConn, dripWorkers)}
	t.Cleanup(sl.close)
	settle()
	before := runtime.NumGoroutine()
	for range slowConns / 2 {
		sl.silent = append(sl.silent, dial(t, addr))
	}
	settle()
	silentCost = runtime.NumGoroutine() - before
	for i := range slowConns / 2 {
		head := fmt.Sprintf("GET /subscribe/slow/%d HTTP/1.1\r\nHost: x\r\nX-Slow: ", i)
		if i%2 == 1 {
			head = fmt.Sprintf("POST /publish/slow/%d HTTP/1.1\r\nHost: x\r\nX-Slow: ", i)
		}
		sl.drip[i%dripWorkers] = append(sl.drip[i%dripWorkers], &dripConn{Conn: dial(t, addr), head: head})
	}
	for _, conns := range sl.drip {
		sl.workers.Go(func() { dripLoop(conns, sl.stop) })
	}
	return sl, silentCost
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// dripLoop sends the next byte of every live connection each tick, and ends when told to or when the
// server has closed all of them.
func dripLoop(conns []*dripConn, stop <-chan struct{}) {
	tick := time.NewTicker(dripEvery)
	defer tick.Stop()
	for {
		live := 0
		for _, c := range conns {
			if c.dead || c.sent == dripLen {
				continue
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(c.next()); err != nil {
				c.dead = true
				continue
			}
			c.sent++
			live++
		}
		if live == 0 {
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// pause stops the workers and leaves every connection open, its head unfinished.
func (sl *slowloris) pause() {
	select {
	case <-sl.stop:
	default:
		close(sl.stop)
	}
	sl.workers.Wait()
}

// close stops the workers and closes every connection; it may run more than once.
func (sl *slowloris) close() {
	sl.pause()
	for _, c := range sl.silent {
		c.Close()
	}
	for _, conns := range sl.drip {
		for _, c := range conns {
			c.Close()
		}
	}
}

// all returns every connection of the swarm.
func (sl *slowloris) all() []net.Conn {
	out := append([]net.Conn(nil), sl.silent...)
	for _, conns := range sl.drip {
		for _, c := range conns {
			out = append(out, c.Conn)
		}
	}
	return out
}

// settle lets goroutines that are ending end, so counts taken next are of what stays.
func settle() {
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// stackInuse is the memory of goroutine stacks, which HeapInuse does not count.
func stackInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}

// receive100 subscribes a normal client, publishes 100 events and checks they all arrive, in order. The
// client reads with a bare socket and a 512-byte buffer (rawStream) so that it adds nothing worth
// counting to the heap figures.
func receive100(t *testing.T, srv *testServer) time.Duration {
	t.Helper()
	began := time.Now()
	c, r := rawStream(t, srv.addr, "/subscribe/normal")
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	testutil.WaitFor(t, "the normal stream", func() bool { return srv.Stats().TopicStreams == 1 })
	for i := range 100 {
		publish(t, srv, "/normal", "tick", fmt.Sprint(i))
	}
	for i := range 100 {
		if err := readUntil(r, "event: tick"); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		line, err := r.ReadString('\n')
		if want := fmt.Sprintf("data: %d\n", i); err != nil || line != want {
			t.Fatalf("event %d: got %q, %v; want %q", i, line, err, want)
		}
	}
	c.Close()
	testutil.WaitFor(t, "the normal stream to close", func() bool { return srv.Stats().TopicStreams == 0 })
	return time.Since(began)
}

// TestSlowlorisDoesNotStarveStreams holds 1,000 slowloris connections (under a head deadline far off)
// while a normal client subscribes and receives 100 events. No connection costs a goroutine, whether it
// sent nothing or part of a head; the heap grows by less than heapPerConn a connection. The deadline is
// not the default 10 s: on a loaded CI machine the 100 events took 9 s under -race, and the swarm reached
// it. TestSlowlorisClosedByHeadTimeout tests the deadline itself.
func TestSlowlorisDoesNotStarveStreams(t *testing.T) {
	const headTimeout = 2 * time.Minute
	srv := start(t, teststack.Config{HeadTimeout: headTimeout})
	settle()
	g0, h0, s0 := runtime.NumGoroutine(), heapInuse(), stackInuse()
	sl, silentCost := startSlowloris(t, srv.addr)
	// Every dripping connection has sent dripMin bytes after dripMin ticks (a worker writes all of its
	// connections each tick); wait a little longer than that.
	time.Sleep(dripMin*dripEvery + 500*time.Millisecond)

	took := receive100(t, srv)

	// While bytes drip in, netpoll's pool runs handlers for them; once the drip pauses, what stays is
	// what the connections hold.
	sl.pause()
	settle()
	g1, h1, s1 := runtime.NumGoroutine(), heapInuse(), stackInuse()
	t.Logf("%d slowloris connections held: 500 silent cost %d goroutines; all: +%d goroutines, heap %+.1f MiB (%.1f KiB a connection, client sockets included), stacks %+.1f MiB; 100 events received in %v",
		slowConns, silentCost, g1-g0, mib(h1, h0), float64(int64(h1)-int64(h0))/slowConns/1024, mib(s1, s0), took.Round(time.Millisecond))
	if silentCost > 8 {
		t.Errorf("500 silent connections cost %d goroutines; want none (netpoll holds them without a handler)", silentCost)
	}
	if g1-g0 > goroutineSlack {
		t.Errorf("+%d goroutines with the swarm held; want at most %d (none per connection, whatever it sent)", g1-g0, goroutineSlack)
	}
	if h1 > h0 && h1-h0 > slowConns*heapPerConn {
		t.Errorf("heap grew by %.1f MiB; want at most %.1f MiB (%d KiB a connection)", mib(h1, h0), float64(slowConns*heapPerConn)/(1<<20), heapPerConn>>10)
	}
	// The swarm is still connected: the server did not give up on heads before their deadline.
	open := 0
	for _, c := range sl.all() {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); isTimeout(err) {
			open++
		}
	}
	if open != slowConns {
		t.Errorf("%d of %d slowloris connections still open before the %v head deadline", open, slowConns, headTimeout)
	}
	sl.close() // start()'s leak check then sees every goroutine of the swarm gone
}

// TestSlowlorisClosedByHeadTimeout runs the swarm against a 1s head deadline: the server closes every
// slowloris connection (their reads end), the dripping workers find their writes refused, and
// goroutines and heap return to where they were.
func TestSlowlorisClosedByHeadTimeout(t *testing.T) {
	const headTimeout = time.Second
	srv := start(t, teststack.Config{HeadTimeout: headTimeout})
	settle()
	g0, h0 := runtime.NumGoroutine(), heapInuse()
	began := time.Now()
	sl, _ := startSlowloris(t, srv.addr)
	dialed := time.Since(began)

	took := receive100(t, srv) // well within the deadline; the swarm is at its peak

	// Each connection must be closed by the server; the wait is bounded by the deadline (a head of
	// either kind stays with the edge until it is complete), the reaper's period (HeadTimeout/2) and
	// slack for the race detector.
	limit := began.Add(dialed + headTimeout + headTimeout/2 + 3*time.Second)
	var eof, reset int
	for i, c := range sl.all() {
		_ = c.SetReadDeadline(limit)
		_, err := io.Copy(io.Discard, c)
		switch {
		case err == nil:
			eof++
		case errors.Is(err, syscall.ECONNRESET): // the server closed with a dripped byte unread
			reset++
		default:
			t.Fatalf("slowloris connection %d (of %d, silent first) not closed by the server %v after it was dialed: %v",
				i, slowConns, time.Since(began).Round(time.Millisecond), err)
		}
	}
	closedIn := time.Since(began)
	sl.close()

	settle()
	g1, h1 := runtime.NumGoroutine(), heapInuse()
	t.Logf("all %d slowloris connections closed by the server within %v of the first dial (dialing took %v; %d EOF, %d reset); 100 events received in %v meanwhile; after: %+d goroutines, heap %+.1f MiB",
		slowConns, closedIn.Round(time.Millisecond), dialed.Round(time.Millisecond), eof, reset, took.Round(time.Millisecond), g1-g0, mib(h1, h0))
	if g1-g0 > goroutineSlack/4 {
		t.Errorf("%+d goroutines once the swarm is closed; want at most %d", g1-g0, goroutineSlack/4)
	}
	if h1 > h0 && h1-h0 > heapAfter {
		t.Errorf("heap %+.1f MiB once the swarm is closed; want at most %d MiB", mib(h1, h0), heapAfter>>20)
	}
	// The node still serves new streams after the swarm.
	receive100(t, srv)
}

func mib(a, b uint64) float64 { return (float64(a) - float64(b)) / (1 << 20) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
