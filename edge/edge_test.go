package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/edge"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/transport"
)

func TestHierarchicalTopics(t *testing.T) {
	srv := start(t, teststack.Config{})
	pets := openSSE(t, srv.url+"/subscribe/pets", nil)
	dogs := openSSE(t, srv.url+"/subscribe/pets/dogs", nil)
	cats := openSSE(t, srv.url+"/subscribe/pets/cats", nil)
	if ct := pets.Resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc, xa := pets.Resp.Header.Get("Cache-Control"), pets.Resp.Header.Get("X-Accel-Buffering"); cc != "no-cache" || xa != "no" {
		t.Errorf("Cache-Control %q, X-Accel-Buffering %q", cc, xa)
	}
	testutil.WaitFor(t, "3 topic streams", func() bool { return srv.Stats().TopicStreams == 3 })

	id := publish(t, srv, "/pets/dogs", "bark", "woof\nwoof woof\r\nwoof!")
	for name, s := range map[string]*sseStream{"pets": pets, "dogs": dogs} {
		ev := s.next(t)
		if ev.Type != "bark" || ev.Data != "woof\nwoof woof\nwoof!" || ev.LastEventID != id {
			t.Errorf("%s got %+v; want bark with id %s", name, ev, id)
		}
	}
	cats.expectNone(t, 200*time.Millisecond)

	// JSON data is passed through compacted; the default event type is message.
	code, out := post(t, srv.url+"/publish/pets/cats", `{"data": {"name": "Tom",  "age": 3}}`)
	if code != 200 {
		t.Fatalf("publish: %d %v", code, out)
	}
	if ev := cats.next(t); ev.Type != "" || ev.Data != `{"name":"Tom","age":3}` {
		t.Errorf("cats got %+v", ev)
	}
	if ev := pets.next(t); ev.Data != `{"name":"Tom","age":3}` {
		t.Errorf("pets got %+v", ev)
	}
}

func TestClientStream(t *testing.T) {
	srv := start(t, teststack.Config{NodeID: "node-a"})
	h := http.Header{"X-User-Id": {"u-42"}, "Origin": {"https://app.example"}}
	alice := openSSE(t, srv.url+"/sse/alice?plan=pro", h)
	bob := openSSE(t, srv.url+"/sse/bob", nil)
	if got := alice.Resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	ev := alice.next(t)
	var connected struct{ ClientID, NodeID, ConnectedAt string }
	if err := json.Unmarshal([]byte(ev.Data), &struct {
		ClientID    *string `json:"client_id"`
		NodeID      *string `json:"node_id"`
		ConnectedAt *string `json:"connected_at"`
	}{&connected.ClientID, &connected.NodeID, &connected.ConnectedAt}); err != nil || ev.Type != "connected" {
		t.Fatalf("first event %+v: %v", ev, err)
	}
	if connected.ClientID != "alice" || connected.NodeID != "node-a" || connected.ConnectedAt == "" {
		t.Errorf("connected %+v", connected)
	}
	bob.next(t) // connected

	code, out := post(t, srv.url+"/clients/alice/events", `{"event":"note","data":"for alice"}`)
	if code != 200 || out["id"] == "" {
		t.Fatalf("client event: %d %v", code, out)
	}
	if ev := alice.next(t); ev.Type != "note" || ev.Data != "for alice" {
		t.Errorf("alice got %+v", ev)
	}
	bob.expectNone(t, 200*time.Millisecond)

	// The connection listing shows metadata, and pages by ID.
	resp, err := http.Get(srv.url + "/admin/connections?kind=sse&limit=1")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Counts      map[string]int `json:"counts"`
		Connections []struct {
			ID       uint64            `json:"id"`
			ClientID string            `json:"client_id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"connections"`
		NextAfter uint64 `json:"next_after"`
	}
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if page.Counts["sse"] != 2 || len(page.Connections) != 1 || page.NextAfter == 0 {
		t.Fatalf("page 1: %+v", page)
	}
	if c := page.Connections[0]; c.ClientID != "alice" || c.Metadata["plan"] != "pro" || c.Metadata["user_id"] != "u-42" {
		t.Errorf("alice row %+v", c)
	}
	resp, _ = http.Get(srv.url + "/admin/connections?kind=sse&after=" + strconv.FormatUint(page.NextAfter, 10))
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if len(page.Connections) != 1 || page.Connections[0].ClientID != "bob" {
		t.Errorf("page 2: %+v", page)
	}
}

func TestHealth(t *testing.T) {
	srv := start(t, teststack.Config{NodeID: "node-h"})
	openSSE(t, srv.url+"/subscribe/x", nil)
	testutil.WaitFor(t, "one stream", func() bool { return srv.Stats().TopicStreams == 1 })
	resp, err := http.Get(srv.url + "/admin/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status  string           `json:"status"`
		NodeID  string           `json:"node_id"`
		Streams map[string]int64 `json:"streams"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	if resp.StatusCode != 200 || h.Status != "ok" || h.NodeID != "node-h" || h.Streams["topic"] != 1 || h.Streams["total"] != 1 {
		t.Errorf("health %d %+v", resp.StatusCode, h)
	}
}

// TestIdleStreamsCostNoGoroutines holds 2,000 streams and counts the goroutines they add.
func TestIdleStreamsCostNoGoroutines(t *testing.T) {
	srv := start(t, teststack.Config{})
	before := runtime.NumGoroutine()
	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, _ := rawStream(t, srv.addr, fmt.Sprintf("/subscribe/idle/%d", i%10))
		conns = append(conns, c)
	}
	testutil.WaitFor(t, "2000 streams", func() bool { return srv.Stats().TopicStreams == n })
	runtime.GC()
	added := runtime.NumGoroutine() - before
	t.Logf("%d idle streams added %d goroutines", n, added)
	if added >= 50 {
		t.Fatalf("%d idle streams added %d goroutines; want fewer than 50", n, added)
	}
	// They are live: a publish reaches one of them.
	publish(t, srv, "/idle/3", "", "ping")
	r := bufio.NewReader(conns[3])
	if err := readUntil(r, "data: ping"); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testutil.WaitFor(t, "streams to close", func() bool { return srv.Stats().TopicStreams == 0 })
}

// TestHeartbeats checks that 500 idle streams all get heartbeats and that a tick builds one frame.
func TestHeartbeats(t *testing.T) {
	srv := start(t, teststack.Config{HeartbeatInterval: 100 * time.Millisecond})
	const n = 500
	startFrames := srv.Stats().HeartbeatFrames
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		c, r := rawStream(t, srv.addr, "/subscribe/quiet")
		wg.Go(func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for range 2 { // two heartbeats each: they keep coming
				if err := readUntil(r, "event: heartbeat"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a stream got no heartbeat: %v", err)
	}
	ticks := uint64(time.Since(began)/(100*time.Millisecond)) + 1
	built := srv.Stats().HeartbeatFrames - startFrames
	t.Logf("%d streams x 2 heartbeats; %d frames built in %d ticks", n, built, ticks)
	if built > ticks || built < 2 {
		t.Fatalf("built %d heartbeat frames in %d ticks for %d streams; want one per tick", built, ticks, n)
	}
}

func TestResume(t *testing.T) {
	srv := start(t, teststack.Config{})
	s := openSSE(t, srv.url+"/subscribe/feed", nil)
	testutil.WaitFor(t, "stream", func() bool { return srv.Stats().TopicStreams == 1 })
	publish(t, srv, "/feed", "", "seen")
	last := s.next(t).LastEventID
	s.Close()
	testutil.WaitFor(t, "disconnect", func() bool { return srv.Stats().TopicStreams == 0 })

	for i := range 50 {
		publish(t, srv, "/feed/sub", "", strconv.Itoa(i))
	}
	// Resume from the header on the ancestor topic; then a live event follows the replay.
	s = openSSE(t, srv.url+"/subscribe/feed", http.Header{"Last-Event-Id": {last}})
	for i := range 50 {
		if ev := s.next(t); ev.Data != strconv.Itoa(i) {
			t.Fatalf("replayed event %d: %+v", i, ev)
		}
	}
	publish(t, srv, "/feed", "", "live")
	if ev := s.next(t); ev.Data != "live" {
		t.Fatalf("after replay got %+v; want the live event", ev)
	}
	s.expectNone(t, 100*time.Millisecond)

	// The query parameter works for clients that cannot set headers.
	q := openSSE(t, srv.url+"/subscribe/feed?lastEventId="+last, nil)
	if ev := q.next(t); ev.Data != "0" {
		t.Fatalf("query resume first event %+v", ev)
	}
}

func TestResumeEvictedGetsReset(t *testing.T) {
	srv := start(t, teststack.Config{History: fanout.Config{HistorySize: 10}})
	first := publish(t, srv, "/r", "", "0")
	for i := 1; i <= 20; i++ {
		publish(t, srv, "/r", "", strconv.Itoa(i))
	}
	s := openSSE(t, srv.url+"/subscribe/r", http.Header{"Last-Event-Id": {first}})
	ev := s.next(t)
	if ev.Type != "reset" || !strings.Contains(ev.Data, first) {
		t.Fatalf("first event %+v; want reset naming %s", ev, first)
	}
	for i := 11; i <= 20; i++ {
		if ev := s.next(t); ev.Data != strconv.Itoa(i) {
			t.Fatalf("retained event %d: %+v", i, ev)
		}
	}
}

// TestSlowConsumer stalls one client and checks that it is cut off while 100 others get all 10,000 events.
func TestSlowConsumer(t *testing.T) {
	// The queue bound leaves a healthy reader headroom under the race detector; the small send buffer
	// keeps the kernel from absorbing the whole flood for the stalled one.
	srv := start(t, teststack.Config{MaxQueueBytes: 512 << 10, SendBufferBytes: 16 << 10})
	stalled := stalledStream(t, srv.addr, "/subscribe/flood")
	defer stalled.Close()

	// The publisher keeps at most two windows ahead of the healthy readers, so they are never slow
	// consumers themselves; a stalled client that held anyone up would stop a window from completing.
	const subs, events, window = 100, 10000, 500
	windows := make([]sync.WaitGroup, events/window)
	for i := range windows {
		windows[i].Add(subs)
	}
	counts := make(chan int, subs)
	for range subs {
		c, r := rawStream(t, srv.addr, "/subscribe/flood")
		go func() {
			defer c.Close()
			next := 0
			defer func() {
				for w := next / window; w < len(windows); w++ { // unblock the publisher if we stop early
					windows[w].Done()
				}
				counts <- next
			}()
			c.SetReadDeadline(time.Now().Add(3 * time.Minute)) // a hang guard only: 10,000 publishes under -race take about a minute here
			heartbeat := false
			for next < events {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.HasPrefix(line, []byte("event: heartbeat")) {
					heartbeat = true
					continue
				}
				v, ok := bytes.CutPrefix(line, []byte("data: "))
				if !ok {
					continue
				}
				if heartbeat { // the heartbeat's data line
					heartbeat = false
					continue
				}
				sp := bytes.IndexByte(v, ' ')
				if sp < 0 {
					t.Errorf("corrupt data line %q after event %d", line, next)
					return
				}
				if n, _ := strconv.Atoi(string(v[:sp])); n != next {
					t.Errorf("event %s after %d: out of order or missing", v[:sp], next-1)
					return
				}
				next++
				if next%window == 0 {
					windows[next/window-1].Done()
				}
			}
		}()
	}
	testutil.WaitFor(t, "101 streams", func() bool { return srv.Stats().TopicStreams == subs+1 })

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	payload := strings.Repeat("x", 200)
	client := &http.Client{}
	for i := range events {
		resp, err := client.Post(srv.url+"/publish/flood", "application/json",
			strings.NewReader(fmt.Sprintf(`{"data":"%d %s"}`, i, payload)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if w := (i+1)/window - 2; (i+1)%window == 0 && w >= 0 {
			windows[w].Wait()
		}
	}
	for range subs {
		if got := <-counts; got != events {
			t.Fatalf("a subscriber got %d of %d events in order (slow consumers cut: %d)", got, events, srv.Stats().SlowConsumers)
		}
	}
	if srv.Stats().SlowConsumers != 1 {
		t.Fatalf("slow consumers = %d; want 1", srv.Stats().SlowConsumers)
	}
	// Memory stays bounded: 10,000 events of ~215 bytes were published (2 MiB, shared by every
	// subscriber), and the stalled stream held at most its 512 KiB queue before it was cut off.
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %d KiB during the flood", grown>>10)
	if grown > 32<<20 {
		t.Fatalf("heap in use grew by %d MiB during the flood; want under 32 MiB", grown>>20)
	}
	testutil.WaitFor(t, "the stalled stream to be closed", func() bool { return srv.Stats().TopicStreams == 0 })
	client.CloseIdleConnections()
}

func TestBadInput(t *testing.T) {
	srv := start(t, teststack.Config{MaxBodyBytes: 4096})
	cases := []struct {
		name   string
		req    string
		status int
		code   string
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400, ""},
		{"unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"empty topic", "GET /subscribe/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_topic"},
		{"dot-dot topic", "GET /subscribe/a/../b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_path"},
		{"control char topic", "GET /subscribe/a%01b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_path"},
		{"bad stream head", "GET /subscribe/a HTTP/1.1\r\nBad Header\r\n\r\n", 400, "bad_request"},
		{"huge stream head", "GET /subscribe/a HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431, "head_too_large"},
		{"control char client id", "GET /sse/%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_path"},
		{"bad client id", "GET /sse/" + strings.Repeat("a", 129) + " HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_client_id"},
		{"bad json", rawPost("/publish/t", "{nope"), 400, "bad_json"},
		{"missing data", rawPost("/publish/t", `{"event":"x"}`), 400, "missing_data"},
		{"empty data", rawPost("/publish/t", `{"data":""}`), 400, "empty_data"},
		{"event injection", rawPost("/publish/t", `{"event":"a\nid: 1","data":"x"}`), 400, "bad_event"},
		{"publish empty topic", rawPost("/publish/", `{"data":"x"}`), 400, "bad_topic"},
		{"publish dot-dot", rawPost("/publish/a/..", `{"data":"x"}`), 400, "bad_path"},
		{"deep topic", "GET /subscribe" + strings.Repeat("/a", 40) + " HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_topic"},
		{"body too large", rawPost("/publish/t", `{"data":"`+strings.Repeat("a", 5000)+`"}`), 413, "body_too_large"},
		{"wrong method", "DELETE /publish/t HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		status, body := rawRequest(t, srv.addr, []byte(c.req))
		var e struct{ Error, Code string }
		if status != c.status || json.Unmarshal(body, &e) != nil || e.Error == "" || (c.code != "" && e.Code != c.code) {
			t.Errorf("%s: %d %s; want %d with code %q", c.name, status, body, c.status, c.code)
		}
	}
	// The node still serves.
	s := openSSE(t, srv.url+"/subscribe/ok", nil)
	testutil.WaitFor(t, "stream", func() bool { return srv.Stats().TopicStreams == 1 })
	publish(t, srv, "/ok", "", "fine")
	if ev := s.next(t); ev.Data != "fine" {
		t.Fatalf("after bad input got %+v", ev)
	}
}

func rawPost(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// TestSlowHeadIsClosed checks that a connection that never finishes its head is closed by the deadline.
func TestSlowHeadIsClosed(t *testing.T) {
	srv := start(t, teststack.Config{HeadTimeout: 300 * time.Millisecond})
	for _, partial := range []string{"", "GET /subscribe/x HTTP/1.1\r\nHost:"} {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(partial))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("partial head %q: connection not closed by the server: %v", partial, err)
		}
	}
}

// TestStreamOnKeepAliveConnection opens a stream on a connection that first served an API request.
func TestStreamOnKeepAliveConnection(t *testing.T) {
	srv := start(t, teststack.Config{})
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health on keep-alive: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	fmt.Fprintf(c, "GET /subscribe/ka HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := readUntil(r, "retry: "); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "stream", func() bool { return srv.Stats().TopicStreams == 1 })
	publish(t, srv, "/ka", "", "hijacked")
	if err := readUntil(r, "data: hijacked"); err != nil {
		t.Fatal(err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	leakCheck(t)
	srv, err := teststack.New(teststack.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	ts := &testServer{Stack: srv, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
	s := openSSE(t, ts.url+"/subscribe/bye", nil)
	testutil.WaitFor(t, "stream", func() bool { return srv.Stats().TopicStreams == 1 })
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ev := s.next(t)
	if ev.Type != "shutdown" || !strings.Contains(ev.Data, "retry_ms") {
		t.Fatalf("last event %+v; want shutdown", ev)
	}
	if _, ok := <-s.Events(); ok {
		t.Fatal("stream not closed after shutdown")
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
}

// TestLongStreamHeads: with netpoll's read buffer far smaller than a head (DefaultReadBufferSize), heads up
// to MaxHeadBytes open streams, whether they arrive in one write or dribble in small pieces.
func TestLongStreamHeads(t *testing.T) {
	srv := start(t, teststack.Config{})
	for i, size := range []int{edge.DefaultReadBufferSize - 40, 3000, edge.DefaultMaxHeadBytes - 100} {
		head := "GET /subscribe/long HTTP/1.1\r\nHost: x\r\nCookie: "
		head += strings.Repeat("c", size-len(head)-4) + "\r\n\r\n"
		for _, chunk := range []int{len(head), 100} {
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			for b := []byte(head); len(b) > 0; {
				n := min(chunk, len(b))
				if _, err := c.Write(b[:n]); err != nil {
					t.Fatal(err)
				}
				b = b[n:]
				if chunk < len(head) {
					time.Sleep(time.Millisecond)
				}
			}
			r := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if err := readUntil(r, "retry: "); err != nil {
				t.Fatalf("head of %d bytes in chunks of %d: %v", len(head), chunk, err)
			}
			want := fmt.Sprintf("long-%d-%d", i, chunk)
			publish(t, srv, "/long", "", want)
			if err := readUntil(r, "data: "+want); err != nil {
				t.Fatalf("head of %d bytes in chunks of %d: %v", len(head), chunk, err)
			}
			c.Close()
		}
	}
}

// TestShutdownWithStalledStream shuts down while a client that never reads still has bytes queued: the
// drain deadline passes, and Shutdown must still close everything and return.
func TestShutdownWithStalledStream(t *testing.T) {
	leakCheck(t)
	srv, err := teststack.New(teststack.Config{Logger: slog.New(slog.DiscardHandler), SendBufferBytes: 4096, WriteTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	d := net.Dialer{Control: func(_, _ string, rc syscallRawConn) error { return setRcvBuf(rc, 4096) }}
	stalled, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /subscribe/stall HTTP/1.1\r\nHost: x\r\n\r\n")
	testutil.WaitFor(t, "the stream", func() bool { return srv.Stats().TopicStreams == 1 })
	ts := &testServer{Stack: srv, addr: addr, url: "http://" + addr}
	big := strings.Repeat("x", 8000)
	for range 40 { // far more than the socket buffers hold
		publish(t, ts, "/stall", "", big)
	}
	http.DefaultClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- srv.Shutdown(ctx) }()
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("Shutdown reported a full drain with a stalled stream")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown hung with a stalled stream")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHeldStreamFraming checks what a stream held for another package (MCP) sees besides its own
// events: heartbeats and the shutdown notice come as comments, never as events its client would take
// for its own.
func TestHeldStreamFraming(t *testing.T) {
	leakCheck(t)
	srv, err := teststack.New(teststack.Config{Logger: slog.New(slog.DiscardHandler), HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Router().GET("/held", func(ctx *fasthttp.RequestCtx) {
		srv.HoldStream(ctx, transport.Spec{Key: "held-1", First: []byte("event: first\ndata: x\n\n")})
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c, r := dialRaw(t, ln.Addr().String(), "GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
	defer c.Close()
	if err := readUntil(r, "event: first"); err != nil {
		t.Fatal(err)
	}
	if err := readUntil(r, ": heartbeat"); err != nil { // a heartbeat tick has passed
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if strings.Contains(string(rest), "event:") || !strings.Contains(string(rest), "retry: ") || !strings.Contains(string(rest), ": node shutting down") {
		t.Fatalf("after the first event the held stream got %q; want comments and a retry hint only", rest)
	}
}
