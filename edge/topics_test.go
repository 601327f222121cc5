package edge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/teststack"
)

// Issue 13's acceptance on one node, in memory, with real sockets: multi-topic streams, one cursor,
// resume of every key, resets naming their topic, server-side subscriptions, the envelope.

// nextEvent is the next event that carries data, skipping heartbeats and id-only events (which move the
// parser's last event ID, as they do an EventSource's, and fire nothing).
func (s *sseStream) nextEvent(t *testing.T) sse.Event {
	t.Helper()
	for {
		ev := s.next(t)
		if ev.Type == "" && ev.Data == "" {
			continue
		}
		return ev
	}
}

// collect reads n data events and returns them.
func (s *sseStream) collect(t *testing.T, n int) []sse.Event {
	t.Helper()
	out := make([]sse.Event, n)
	for i := range out {
		out[i] = s.nextEvent(t)
	}
	return out
}

// waitCursor reads id-only events until the stream has sent its first cursor, and returns it.
func (s *sseStream) waitCursor(t *testing.T) string {
	t.Helper()
	for {
		ev := s.next(t)
		if strings.HasPrefix(ev.LastEventID, fanout.CursorPrefix) {
			if ev.Type != "" || ev.Data != "" {
				t.Fatalf("event before the stream's first cursor: %+v", ev)
			}
			return ev.LastEventID
		}
		if ev.Type != "connected" {
			t.Fatalf("unexpected event before the cursor: %+v", ev)
		}
	}
}

func topicsURL(base string, topics ...string) string {
	q := url.Values{"topic": topics}
	return base + "?" + q.Encode()
}

func publishClient(t *testing.T, srv *testServer, client, data string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"data": data})
	code, out := post(t, srv.url+"/clients/"+client+"/events", string(body))
	if code != 200 {
		t.Fatalf("client event: %d %v", code, out)
	}
	return out["id"].(string)
}

// TestMultiTopicStream: /pets, /news, /pets/dogs and client alice on one connection: each event arrives
// once (an event on /pets/dogs too, though two requested topics match it), in order, with cursor ids.
func TestMultiTopicStream(t *testing.T) {
	srv := start(t, teststack.Config{})
	s := openSSE(t, topicsURL(srv.url+"/sse/alice", "/pets", "/news", "/pets/dogs"), nil)
	if ev := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event %+v", ev)
	}
	s.waitCursor(t)
	publish(t, srv, "/pets", "", "p1")
	publish(t, srv, "/pets/dogs", "", "d1")
	publishClient(t, srv, "alice", "a1")
	publish(t, srv, "/news", "", "n1")
	publish(t, srv, "/other", "", "x")
	publish(t, srv, "/pets/dogs", "", "d2")
	var got []string
	for _, ev := range s.collect(t, 5) {
		if !strings.HasPrefix(ev.LastEventID, fanout.CursorPrefix) {
			t.Fatalf("event %+v: id is not a cursor", ev)
		}
		got = append(got, ev.Data)
	}
	if want := "p1 d1 a1 n1 d2"; strings.Join(got, " ") != want {
		t.Fatalf("got %q; want %q", got, want)
	}
	s.expectNone(t, 50*time.Millisecond)
}

// TestMultiTopicResume: drop the connection, publish 5 events to each of 3 topics and 2 to the client,
// reconnect with the last id seen: exactly the 17 missed events, once each, in order per key, then live.
func TestMultiTopicResume(t *testing.T) {
	srv := start(t, teststack.Config{})
	u := topicsURL(srv.url+"/sse/alice", "/a", "/b", "/c/d")
	s := openSSE(t, u, nil)
	publish(t, srv, "/b", "", "before")
	if ev := s.collect(t, 2); ev[0].Type != "connected" || ev[1].Data != "before" {
		t.Fatalf("first events %+v", ev)
	}
	cursor := func() string { // the id the stream sent last
		publish(t, srv, "/a", "", "mark")
		ev := s.nextEvent(t)
		if ev.Data != "mark" {
			t.Fatalf("marker: %+v", ev)
		}
		return ev.LastEventID
	}()
	s.Close()

	want := map[string][]string{}
	for i := range 5 {
		for _, topic := range []string{"/a", "/b", "/c/d"} {
			d := fmt.Sprintf("%s-%d", topic, i)
			publish(t, srv, topic, "", d)
			want[topic] = append(want[topic], d)
		}
		if i < 2 {
			d := fmt.Sprintf("alice-%d", i)
			publishClient(t, srv, "alice", d)
			want["alice"] = append(want["alice"], d)
		}
	}
	publish(t, srv, "/c", "", "not read") // the parent of /c/d: not a topic of the stream

	r := openSSE(t, u, http.Header{"Last-Event-Id": {cursor}})
	if ev := r.next(t); ev.Type != "connected" {
		t.Fatalf("first event on resume %+v", ev)
	}
	got := map[string][]string{}
	for _, ev := range r.collect(t, 17) {
		if ev.Type == "reset" {
			t.Fatalf("reset on resume: %+v", ev)
		}
		key := ev.Data[:strings.LastIndexByte(ev.Data, '-')]
		got[key] = append(got[key], ev.Data)
	}
	for k, w := range want {
		if strings.Join(got[k], ",") != strings.Join(w, ",") {
			t.Fatalf("%s replayed %q; want %q", k, got[k], w)
		}
	}
	publish(t, srv, "/a", "", "live")
	if ev := r.nextEvent(t); ev.Data != "live" {
		t.Fatalf("after the replay: %+v; want the live event", ev)
	}
	r.expectNone(t, 50*time.Millisecond)

	// A stream that saw no event at all resumes too: its first cursor names every key.
	q := openSSE(t, topicsURL(srv.url+"/subscribe", "/fresh1", "/fresh2"), nil)
	first := q.waitCursor(t)
	q.Close()
	publish(t, srv, "/fresh2", "", "f2")
	publish(t, srv, "/fresh1", "", "f1")
	q = openSSE(t, topicsURL(srv.url+"/subscribe", "/fresh1", "/fresh2"), http.Header{"Last-Event-Id": {first}})
	if got := q.collect(t, 2); got[0].Data != "f2" || got[1].Data != "f1" {
		t.Fatalf("resume of fresh topics: %+v; want f2 then f1, in publish order", got)
	}
}

// TestMultiTopicTrimmedReset: one key's position is no longer retained: a reset names it, and the other
// keys resume without loss.
func TestMultiTopicTrimmedReset(t *testing.T) {
	srv := start(t, teststack.Config{History: fanout.Config{HistorySize: 4}})
	u := topicsURL(srv.url+"/subscribe", "/keep", "/trim")
	s := openSSE(t, u, nil)
	s.waitCursor(t)
	publish(t, srv, "/trim", "", "t0")
	cursor := s.nextEvent(t).LastEventID
	s.Close()
	publish(t, srv, "/keep", "", "k1")
	for i := range 6 {
		publish(t, srv, "/trim", "", fmt.Sprintf("t%d", i+1))
	}
	publish(t, srv, "/keep", "", "k2")

	r := openSSE(t, u, http.Header{"Last-Event-Id": {cursor}})
	reset := r.nextEvent(t)
	if reset.Type != "reset" || !strings.Contains(reset.Data, `"topic":"/trim"`) || !strings.Contains(reset.Data, fanout.ResetNotRetained) {
		t.Fatalf("first event %+v; want a reset naming /trim", reset)
	}
	var got []string
	for _, ev := range r.collect(t, 6) { // k1, the 4 of /trim retained, k2
		got = append(got, ev.Data)
	}
	if want := "k1 t3 t4 t5 t6 k2"; strings.Join(got, " ") != want {
		t.Fatalf("replay %q; want %q", got, want)
	}
}

// TestMultiTopicRefusals: too many topics, an over-long cursor, a token not covering a topic (named);
// a malformed cursor is no error: each topic resets.
func TestMultiTopicRefusals(t *testing.T) {
	secret := []byte("topics-secret")
	srv := start(t, teststack.Config{MaxTopicsPerStream: 2, StreamAuth: auth.NewStreamAuth(secret)})
	tok, err := auth.Sign(secret, "alice", []string{"/pets", "/news"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string, h http.Header) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n])
	}
	withTok := func(u string) string { return u + "&token=" + tok }
	if code, body := get(withTok(topicsURL(srv.url+"/subscribe", "/pets", "/news", "/x")), nil); code != 400 || !strings.Contains(body, "too_many_topics") {
		t.Fatalf("3 topics over a bound of 2: %d %s", code, body)
	}
	if code, body := get(withTok(topicsURL(srv.url+"/sse/alice", "/pets", "/secret")), nil); code != 403 ||
		!strings.Contains(body, "token_topic_denied") || !strings.Contains(body, "/secret") {
		t.Fatalf("a topic the token does not cover: %d %s", code, body)
	}
	long := http.Header{"Last-Event-Id": {fanout.CursorPrefix + strings.Repeat("A", fanout.MaxCursorLen)}}
	if code, body := get(withTok(topicsURL(srv.url+"/subscribe", "/pets")), long); code != 400 || !strings.Contains(body, "cursor_too_long") {
		t.Fatalf("an over-long cursor: %d %s", code, body)
	}
	s := openSSE(t, withTok(topicsURL(srv.url+"/subscribe", "/pets/dogs", "/news")), http.Header{"Last-Event-Id": {"~1garbage!"}})
	for _, topic := range []string{"/news", "/pets/dogs"} {
		if ev := s.nextEvent(t); ev.Type != "reset" || !strings.Contains(ev.Data, `"topic":"`+topic+`"`) {
			t.Fatalf("malformed cursor: %+v; want a reset naming %s", ev, topic)
		}
	}
	publish(t, srv, "/news", "", "live")
	if ev := s.nextEvent(t); ev.Data != "live" {
		t.Fatalf("after the resets: %+v", ev)
	}
	// GET /subscribe/{topic} is unchanged: plain ids.
	one := openSSE(t, srv.url+"/subscribe/pets?token="+tok, nil)
	id := publish(t, srv, "/pets", "", "plain")
	if ev := one.nextEvent(t); ev.LastEventID != id {
		t.Fatalf("single-topic stream: %+v; want id %s", ev, id)
	}
}

// TestServerSideSubscriptions: POST and DELETE /clients/{id}/subscriptions add and remove topics on
// alice's live stream, even a plain /sse/alice one; its cursor then covers the new topic.
func TestServerSideSubscriptions(t *testing.T) {
	srv := start(t, teststack.Config{})
	s := openSSE(t, srv.url+"/sse/alice", nil)
	if ev := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event %+v", ev)
	}
	if code, out := post(t, srv.url+"/clients/alice/subscriptions", `{"topics":["/room/1"]}`); code != 200 {
		t.Fatalf("subscribe: %d %v", code, out)
	}
	s.waitCursor(t) // the change is in place once the stream has its first cursor
	publish(t, srv, "/room/1", "", "r1")
	publishClient(t, srv, "alice", "a1")
	got := s.collect(t, 2)
	if got[0].Data != "r1" || got[1].Data != "a1" || !strings.HasPrefix(got[1].LastEventID, fanout.CursorPrefix) {
		t.Fatalf("after subscribe: %+v", got)
	}
	cursor := got[1].LastEventID

	req, _ := http.NewRequest("DELETE", srv.url+"/clients/alice/subscriptions", strings.NewReader(`{"topics":["/room/1"]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unsubscribe: %v %v", resp, err)
	}
	resp.Body.Close()
	// The removal takes the subscription out of the stream as the change arrives (in memory, before the
	// DELETE answers; with Redis, in order with alice's own events).
	publish(t, srv, "/room/1", "", "r-gone")
	publishClient(t, srv, "alice", "a2")
	if ev := s.nextEvent(t); ev.Data != "a2" {
		t.Fatalf("after unsubscribe: %+v; want a2 only", ev)
	}
	publish(t, srv, "/room/1", "", "r-after")
	publishClient(t, srv, "alice", "a3")
	if ev := s.nextEvent(t); ev.Data != "a3" {
		t.Fatalf("after unsubscribe: %+v; want a3 only", ev)
	}

	// The cursor covers /room/1 from the subscribe on: a stream asking for it resumes it.
	r := openSSE(t, topicsURL(srv.url+"/sse/alice", "/room/1"), http.Header{"Last-Event-Id": {cursor}})
	var data []string
	for _, ev := range r.collect(t, 5) {
		data = append(data, ev.Data)
	}
	if want := "r-gone a2 r-after a3"; !strings.HasPrefix(data[0], `{"client_id":"alice"`) || strings.Join(data[1:], " ") != want {
		t.Fatalf("resume after the server-side subscribe: %q; want %q", data, want)
	}

	if code, out := post(t, srv.url+"/clients/nobody/subscriptions", `{"topics":["/x"]}`); code != 200 || out["streams"] != 0.0 {
		t.Fatalf("no stream (kept for its next stream): %d %v", code, out)
	}
	if code, out := post(t, srv.url+"/clients/alice/subscriptions", `{"topics":["bad//topic"]}`); code != 400 {
		t.Fatalf("bad topic: %d %v", code, out)
	}
}

// TestMultiTopicEnvelope: ?envelope=1 wraps each event's data with the topic it came through; the
// client's own events have no topic; the event name stays.
func TestMultiTopicEnvelope(t *testing.T) {
	srv := start(t, teststack.Config{})
	s := openSSE(t, topicsURL(srv.url+"/sse/alice", "/pets")+"&envelope=1", nil)
	s.waitCursor(t)
	publish(t, srv, "/pets/dogs", "bark", "woof")
	code, out := post(t, srv.url+"/publish/pets", `{"data":{"n":1}}`)
	if code != 200 {
		t.Fatalf("publish: %d %v", code, out)
	}
	publishClient(t, srv, "alice", "hi")
	got := s.collect(t, 3)
	want := []sse.Event{
		{Type: "bark", Data: `{"topic":"/pets","data":"woof"}`},
		{Data: `{"topic":"/pets","data":{"n":1}}`},
		{Data: `{"data":"hi"}`},
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].Data != want[i].Data {
			t.Fatalf("event %d: %+v; want %+v", i, got[i], want[i])
		}
	}
}

// TestMultiTopicStreamOnKeepAlive: GET /subscribe?topic=… as the second request of a keep-alive API
// connection is held too (through the router, which cannot route "/subscribe" beside its catch-all);
// other paths there still answer 404.
func TestMultiTopicStreamOnKeepAlive(t *testing.T) {
	srv := start(t, teststack.Config{})
	c, r := dialRaw(t, srv.addr, "GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\nGET /subscribe?topic=/a&topic=/b HTTP/1.1\r\nHost: x\r\n\r\n")
	defer c.Close()
	if status := secondStatus(t, r); status != 200 {
		t.Fatalf("multi-topic stream on a keep-alive connection: %d", status)
	}
	if err := readUntil(r, "id: "+fanout.CursorPrefix); err != nil {
		t.Fatalf("no cursor: %v", err)
	}
	c2, r2 := dialRaw(t, srv.addr, "GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\nGET /subscribers HTTP/1.1\r\nHost: x\r\n\r\n")
	defer c2.Close()
	if status := secondStatus(t, r2); status != 404 {
		t.Fatalf("GET /subscribers: %d", status)
	}
}
