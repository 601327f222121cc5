package api_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
)

// The keep-alive tests' tick and the functions' keep-alive: one second, twenty ticks.
const (
	kaTick   = 50 * time.Millisecond
	kaHeader = `event: ka\ndata: x\n\n; format=cstring; timeout=1`
)

// holdWithKeepAlive answers Grip-Hold: stream on the channel named by the path's first segment, with
// the Grip-Keep-Alive the query's ka gives (kaHeader, plus "; mode=interval" for ?mode=interval).
func holdWithKeepAlive(w http.ResponseWriter, r *http.Request) {
	channel, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	w.Header().Set("Grip-Hold", "stream")
	w.Header().Set("Grip-Channel", channel)
	ka := kaHeader
	if v := r.URL.Query().Get("ka"); v != "" {
		ka = v
	}
	if m := r.URL.Query().Get("mode"); m != "" {
		ka += "; mode=" + m
	}
	w.Header().Set("Grip-Keep-Alive", ka)
}

// rawStream is a held stream read line by line off its socket, so that comments (the edge's
// heartbeats) are seen too.
type rawStream struct {
	lines chan string
	conn  net.Conn
}

// openRawStream sends GET path on a connection of its own and reads its lines until the test ends.
func openRawStream(t *testing.T, e *gripEdge, path string) *rawStream {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: edge\r\nAccept: text/event-stream\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard only
	s := &rawStream{lines: make(chan string, 10000), conn: c}
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("GET %s: %q %v", path, status, err)
	}
	go func() {
		defer close(s.lines)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			s.lines <- strings.TrimRight(line, "\r\n")
		}
	}()
	t.Cleanup(func() {
		c.Close()
		for range s.lines {
		}
	})
	return s
}

// isHeartbeat says whether line is the edge's own heartbeat (an event, or a held stream's comment).
func isHeartbeat(line string) bool {
	return strings.HasPrefix(line, ": heartbeat") || line == "event: heartbeat"
}

// tally counts what a stream's lines carried: the function's keep-alives (event: ka then data: x),
// the edge's heartbeats, published events (data: lines of other events).
type tally struct {
	keepAlives, heartbeats, events int
	last                           string
}

func (t *tally) add(line string) {
	switch {
	case isHeartbeat(line):
		t.heartbeats++
	case line == "data: x" && t.last == "event: ka":
		t.keepAlives++
	case strings.HasPrefix(line, "data: ") && t.last != "event: ka":
		t.events++
	}
	t.last = line
}

// until reads s's lines into t until cond holds, and fails the test if the stream ends first.
func (s *rawStream) until(tb testing.TB, t *tally, what string, cond func() bool) {
	tb.Helper()
	for !cond() {
		line, ok := <-s.lines
		if !ok {
			tb.Fatalf("the stream ended (or its read deadline passed) before %s: %+v", what, *t)
		}
		t.add(line)
	}
}

// drain reads into t the lines s has received so far.
func (s *rawStream) drain(t *tally) {
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return
			}
			t.add(line)
		default:
			return
		}
	}
}

// TestGripKeepAliveReplacesHeartbeat: a quiet GRIP stream whose function set Grip-Keep-Alive gets the
// function's content once a second (twenty ticks of the edge's), never the edge's heartbeat.
func TestGripKeepAliveReplacesHeartbeat(t *testing.T) {
	e := newGripEdge(t, func(c *teststack.Config) { c.HeartbeatInterval = kaTick })
	fn := newGripFunction(t, holdWithKeepAlive)
	e.register("ka", fn.URL, nil)
	s := openRawStream(t, e, "/grip/ka/quiet")
	var got tally
	began := time.Now()
	s.until(t, &got, "three keep-alives", func() bool { return got.keepAlives == 3 })
	took := time.Since(began)
	if got.heartbeats != 0 {
		t.Errorf("%d edge heartbeats on a stream with its own keep-alive", got.heartbeats)
	}
	// Three keep-alives are three windows of twenty ticks: sixty heartbeats' worth (a lower bound,
	// whatever the machine's load).
	if took < 2*time.Second {
		t.Errorf("three keep-alives of timeout=1 in %v; want at least two seconds", took)
	}
	if st := e.stack.Stats(); st.KeepAlives < 3 {
		t.Errorf("Stats().KeepAlives = %d, want at least 3", st.KeepAlives)
	}
	if n := e.plainCounter("sseedge_grip_keepalives_total"); n < 3 {
		t.Errorf("sseedge_grip_keepalives_total = %v, want at least 3", n)
	}
	// A stream without one still gets the edge's heartbeat.
	plain := openRawStream(t, e, "/subscribe/plain")
	var p tally
	plain.until(t, &p, "a heartbeat", func() bool { return p.heartbeats == 1 })
}

// TestGripKeepAliveModes: on a channel published to more often than the keep-alive's timeout, a
// stream in mode idle gets no keep-alive while one in mode interval gets them anyway; once the
// channel is quiet the idle one gets its keep-alive.
func TestGripKeepAliveModes(t *testing.T) {
	e := newGripEdge(t, func(c *teststack.Config) { c.HeartbeatInterval = kaTick })
	fn := newGripFunction(t, holdWithKeepAlive)
	e.register("ka", fn.URL, nil)
	idle := openRawStream(t, e, "/grip/ka/busy?mode=idle")
	interval := openRawStream(t, e, "/grip/ka/busy?mode=interval")

	// Publish every 100 ms (a tenth of the timeout) until the interval stream has had two keep-alives.
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	var iv, id tally
	published := 0
	for iv.keepAlives < 2 {
		select {
		case <-pace.C:
			e.publish(`{"items": [` + gripItem("busy", fmt.Sprintf("data: n%d\n\n", published)) + `]}`)
			published++
		case line, ok := <-interval.lines:
			if !ok {
				t.Fatalf("the interval stream ended: %+v", iv)
			}
			iv.add(line)
		}
	}
	pace.Stop()
	// Every event published reached the idle stream, and no keep-alive came between them.
	idle.until(t, &id, "every published event", func() bool { return id.events == published })
	if id.keepAlives != 0 {
		t.Errorf("idle mode: %d keep-alives on a stream written every 100 ms (timeout 1 s)", id.keepAlives)
	}
	if iv.events < 10 {
		t.Errorf("interval mode: two keep-alives came with %d events; want them among the events", iv.events)
	}
	// Quiet now: the idle stream's keep-alive comes.
	idle.until(t, &id, "a keep-alive on the quiet idle stream", func() bool { return id.keepAlives == 1 })
	interval.drain(&iv)
	if id.heartbeats != 0 || iv.heartbeats != 0 {
		t.Errorf("edge heartbeats on streams with their own keep-alive: idle %d, interval %d", id.heartbeats, iv.heartbeats)
	}
}

// TestGripKeepAliveBounds: a keep-alive's timeout of 0 is taken as one second (Pushpin's minimum);
// one past a day, negative, a bad mode and content over 1 KiB are 502s, counted, and nothing is held.
func TestGripKeepAliveBounds(t *testing.T) {
	e := newGripEdge(t, func(c *teststack.Config) { c.HeartbeatInterval = kaTick })
	fn := newGripFunction(t, holdWithKeepAlive)
	e.register("ka", fn.URL, nil)
	for ka, code := range map[string]string{
		":; timeout=86401":               "grip_malformed",
		":; timeout=-1":                  "grip_malformed",
		":; timeout=1; mode=sometimes":   "grip_malformed",
		": " + strings.Repeat("x", 1100): "grip_too_large",
	} {
		before := e.counter("sseedge_grip_requests_total", "outcome", code)
		st, _, b := e.do("GET", "/grip/ka/c?ka="+url.QueryEscape(ka), "")
		if _, got := errorBody(t, b); st != 502 || got != code {
			t.Errorf("Grip-Keep-Alive %.40q: %d %s, want 502 %s", ka, st, b, code)
		}
		if n := e.counter("sseedge_grip_requests_total", "outcome", code); n != before+1 {
			t.Errorf("Grip-Keep-Alive %.40q: grip_requests_total{outcome=%s} %v, want %v", ka, code, n, before+1)
		}
	}
	if st := e.stack.Stats(); st.TopicStreams != 0 {
		t.Errorf("%d streams held after refused keep-alives", st.TopicStreams)
	}
	s := openRawStream(t, e, "/grip/ka/zero?ka="+url.QueryEscape(`event: ka\ndata: x\n\n; format=cstring; timeout=0`))
	var got tally
	s.until(t, &got, "a keep-alive of timeout=0", func() bool { return got.keepAlives == 1 })
}

// plainCounter reads an sseedge counter without labels (0 when absent).
func (e *gripEdge) plainCounter(name string) float64 {
	e.t.Helper()
	fams, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range fams {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	return 0
}
