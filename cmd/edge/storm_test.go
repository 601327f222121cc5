package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/internal/redistest"
)

// The reconnect storm of issue 18, item 2: how many streams, what history holds when they go, and the
// pace of the publisher that keeps going while they come back.
const (
	stormSubscribers = 1000
	stormPrefill     = 1000 // HISTORY_SIZE's default: the root's history is full
	stormWarm        = 50   // events the streams receive on node A before it is killed
	stormMissed      = 300  // events published between the kill and the reconnection
	stormPublishStep = 10 * time.Millisecond
	stormLimit       = 90 * time.Second
)

// stormPad makes each event about as large as a small JSON payload, so a whole-history read weighs what
// it does in production.
var stormPad = strings.Repeat("p", 120)

// stormStream is one subscriber's stream: the sequence numbers it received, in order, and the resets.
type stormStream struct {
	last     atomic.Int64 // the highest sequence number received, -1 before any
	lastID   string       // the id: of the last event, for Last-Event-ID; written by the reader before done
	got      []int64      // in arrival order; read once done is closed
	resets   []string     // the data of every reset event
	caughtUp atomic.Int64 // unix nanoseconds when last first reached the storm's target, 0 before
	err      error
	done     chan struct{}
}

// stormRead reads one stream until it ends, ctx ends, or it receives final. It runs on its own goroutine
// and reports through s.
func stormRead(ctx context.Context, client *http.Client, url, lastID string, s *stormStream, final, target *atomic.Int64) {
	defer close(s.done)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		s.err = err
		return
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		s.err = err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.err = fmt.Errorf("status %d", resp.StatusCode)
		return
	}
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			return // the node went away, or ctx ended
		}
		switch ev.Type {
		case "heartbeat":
			continue
		case "reset":
			s.resets = append(s.resets, ev.Data)
			continue
		}
		num, _, _ := strings.Cut(ev.Data, " ")
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			s.err = fmt.Errorf("event %q: %w", ev.Data, err)
			return
		}
		s.got = append(s.got, n)
		s.lastID = ev.LastEventID
		if n > s.last.Load() {
			s.last.Store(n)
		}
		if t := target.Load(); t >= 0 && n >= t && s.caughtUp.Load() == 0 {
			s.caughtUp.Store(time.Now().UnixNano())
		}
		if f := final.Load(); f >= 0 && n >= f {
			return
		}
	}
}

// stormPublisher publishes numbered events to one node, one after another.
type stormPublisher struct {
	client *http.Client
	url    string
	next   atomic.Int64 // sequence number of the next event
	failed atomic.Int64
}

// publish publishes the next event and returns its number, or -1 when it was refused.
func (p *stormPublisher) publish() int64 {
	n := p.next.Load()
	body := fmt.Sprintf(`{"data":"%d %s"}`, n, stormPad)
	resp, err := p.client.Post(p.url, "application/json", strings.NewReader(body))
	if err != nil {
		p.failed.Add(1)
		return -1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.failed.Add(1)
		return -1
	}
	p.next.Add(1)
	return n
}

// awaitAll polls until cond holds for every stream, or fails the test after stormLimit.
func awaitAll(t *testing.T, what string, streams []*stormStream, cond func(*stormStream) bool) {
	t.Helper()
	deadline := time.Now().Add(stormLimit)
	for {
		pending := 0
		for _, s := range streams {
			if !cond(s) {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d streams still pending after %v", what, pending, len(streams), stormLimit)
		}
		time.Sleep(20 * time.Millisecond) // progress on 1,000 sockets has no single event to wait on
	}
}

// TestReconnectStormResumes is issue 18's item 2 on real processes: 1,000 streams on node A, whose root
// history is full, lose A to SIGKILL; events go on being published on node B; all 1,000 reconnect to B at
// the same moment with their Last-Event-ID while publishing continues. Every stream must get every event
// after its Last-Event-ID once, in order, and no reset. Before the fix each resume read the root's whole
// history under a 1 s deadline, and most of the 1,000 got a false reset and lost what they missed.
func TestReconnectStormResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes with 1,000 streams")
	}
	r := redistest.StartSingle(t)
	a := startNode(t, "storm-a", "REDIS_ADDR="+r.Addr())
	b := startNode(t, "storm-b", "REDIS_ADDR="+r.Addr())
	const topic = "/storm"
	began := time.Now()
	phase := func(what string) { t.Logf("%6.2f s: %s", time.Since(began).Seconds(), what) }
	pub := &stormPublisher{client: &http.Client{Timeout: 10 * time.Second}, url: b.url + "/publish" + topic}
	for range stormPrefill {
		if pub.publish() < 0 {
			t.Fatal("a prefill publish was refused")
		}
	}

	phase("history prefilled")
	ctx, cancel := context.WithTimeout(t.Context(), 3*stormLimit)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConns: -1}}
	final, target := &atomic.Int64{}, &atomic.Int64{}
	final.Store(-1)
	target.Store(-1)
	first := make([]*stormStream, stormSubscribers)
	for i := range first {
		s := &stormStream{done: make(chan struct{})}
		s.last.Store(-1)
		first[i] = s
		go stormRead(ctx, client, a.url+"/subscribe"+topic, "", s, final, target)
	}
	// A stream is subscribed once its head has arrived; publish until every one has the warm events.
	var warmTo int64
	for range stormWarm {
		warmTo = pub.publish()
	}
	awaitAll(t, "warm events on node A", first, func(s *stormStream) bool {
		select {
		case <-s.done:
			if s.err != nil {
				t.Fatalf("a stream on node A: %v", s.err)
			}
			return true
		default:
		}
		return s.last.Load() >= warmTo
	})
	for _, s := range first {
		if s.last.Load() < warmTo {
			t.Fatalf("a stream on node A ended early at %d", s.last.Load())
		}
	}

	phase("warm events received on A")
	a.kill()
	for _, s := range first {
		select {
		case <-s.done:
		case <-time.After(stormLimit):
			t.Fatal("a stream on the killed node did not end")
		}
	}
	for range stormMissed {
		if pub.publish() < 0 {
			t.Fatal("a publish to node B was refused while the streams were away")
		}
	}
	phase("missed events published")
	missedTo := pub.next.Load() - 1
	target.Store(missedTo)

	// Publishing continues while every stream reconnects to B at the same moment.
	stopPub, pubDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(stormPublishStep)
		defer tick.Stop()
		for {
			pub.publish()
			select {
			case <-stopPub:
				return
			case <-tick.C:
			}
		}
	}()
	second := make([]*stormStream, stormSubscribers)
	gate := make(chan struct{})
	var started sync.WaitGroup
	for i := range second {
		s := &stormStream{done: make(chan struct{})}
		s.last.Store(-1)
		second[i] = s
		started.Add(1)
		go func() {
			started.Done()
			<-gate
			stormRead(ctx, client, b.url+"/subscribe"+topic, first[i].lastID, s, final, target)
		}()
	}
	started.Wait()
	released := time.Now()
	close(gate)

	// Every stream has caught up once it has the last event published while it was away, or it ended.
	awaitAll(t, "resume on node B", second, func(s *stormStream) bool {
		select {
		case <-s.done:
			return true
		default:
		}
		return s.caughtUp.Load() != 0
	})
	allResumed := time.Since(released)
	phase("resumed")
	var slowest time.Duration
	for _, s := range second {
		if at := s.caughtUp.Load(); at != 0 {
			slowest = max(slowest, time.Unix(0, at).Sub(released))
		}
	}
	close(stopPub)
	<-pubDone
	last := pub.next.Load() // the end marker: every stream reads up to it (known before it can arrive)
	final.Store(last)
	for pub.publish() < 0 {
		if time.Since(released) > stormLimit {
			t.Fatal("the end marker was refused")
		}
	}
	for _, s := range second {
		select {
		case <-s.done:
		case <-time.After(stormLimit):
			cancel() // ends every reader, so the figures below can be read
			<-s.done
		}
	}

	phase("end marker received")
	var resets, missing, extra, broken, ended int
	var sample []string
	for i, s := range second {
		from := first[i].last.Load() + 1
		want := last - from + 1
		seen := map[int64]bool{}
		inOrder := true
		for j, n := range s.got {
			if n < from || n > last || seen[n] {
				extra++
			}
			seen[n] = true
			if n != from+int64(j) {
				inOrder = false
			}
		}
		got := 0
		for n := from; n <= last; n++ {
			if seen[n] {
				got++
			}
		}
		missing += int(want) - got
		resets += len(s.resets)
		if !inOrder {
			broken++
		}
		if s.err != nil || s.last.Load() < last {
			ended++
		}
		if (len(s.resets) > 0 || !inOrder || s.err != nil) && len(sample) < 3 {
			sample = append(sample, fmt.Sprintf("stream %d: from %d, %d events, resets %q, err %v", i, from, len(s.got), s.resets, s.err))
		}
	}
	fams := scrape(t, b.url)
	t.Logf("storm: %d streams resumed on B after SIGKILL of A, each from %d events back (history full at %d); "+
		"%d resets, %d deliveries missing, %d extra, %d streams out of order, %d streams short of the end; "+
		"all caught up %.2f s after the reconnect (slowest stream %.2f s); %d publishes refused; "+
		"B: sseedge_resets_total %g, sseedge_replayed_events_total %g, sseedge_resume_waits_total %g, sseedge_resume_history_unavailable_total %g",
		stormSubscribers, missedTo-warmTo, stormPrefill, resets, missing, extra, broken, ended,
		allResumed.Seconds(), slowest.Seconds(), pub.failed.Load(),
		value(fams, "sseedge_resets_total"), value(fams, "sseedge_replayed_events_total"),
		value(fams, "sseedge_resume_waits_total"), value(fams, "sseedge_resume_history_unavailable_total"))
	for _, s := range sample {
		t.Log(s)
	}
	if resets > 0 || missing > 0 || extra > 0 || broken > 0 || ended > 0 {
		t.Fatalf("after the storm: %d resets, %d deliveries missing, %d extra, %d streams out of order, %d short; want none", resets, missing, extra, broken, ended)
	}
}
