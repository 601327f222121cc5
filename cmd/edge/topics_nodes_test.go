package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
)

// Issue 13's acceptance with Redis and node processes: a multi-topic stream resumes on another node
// after its first one is SIGKILLed, and server-side subscriptions made on node A reach a stream on B.

// nextData is the next event with data (id-only events move LastEventID and fire nothing).
func (s *subscriber) nextData(t *testing.T) sse.Event {
	t.Helper()
	for {
		ev, ok := s.next(t)
		if !ok {
			t.Fatal("stream ended")
		}
		if ev.Type != "" || ev.Data != "" {
			return ev
		}
	}
}

// firstCursor reads the stream's head events up to its first cursor (an id-only event).
func (s *subscriber) firstCursor(t *testing.T) string {
	t.Helper()
	for {
		ev, ok := s.next(t)
		if !ok {
			t.Fatal("stream ended")
		}
		if strings.HasPrefix(ev.LastEventID, fanout.CursorPrefix) && ev.Data == "" {
			return ev.LastEventID
		}
		if ev.Type != "connected" {
			t.Fatalf("before the first cursor: %+v", ev)
		}
	}
}

func publishTo(t *testing.T, node *edgeNode, path, data string) {
	t.Helper()
	if code, out := request(t, "POST", node.url+path, fmt.Sprintf(`{"data":%q}`, data)); code != 200 {
		t.Fatalf("POST %s on %s: %d %v", path, node.name, code, out)
	}
}

// TestMultiTopicStreamsAcrossNodes: alice reads /a, /b, /c/d and her own key on node A; A is killed;
// 5 events to each topic and 2 to alice are published on C; she reconnects to B with the last id seen
// and gets exactly the 17, once each, then live ones. Then a server-side subscribe and unsubscribe sent
// to C reach her stream on B, and her cursor resumes the added topic.
func TestMultiTopicStreamsAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and several edge processes")
	}
	r := redistest.StartSingle(t)
	env := "REDIS_ADDR=" + r.Addr()
	a, b, c := startNode(t, "node-a", env), startNode(t, "node-b", env), startNode(t, "node-c", env)
	q := url.Values{"topic": {"/a", "/b", "/c/d"}}.Encode()

	s := subscribe(t, a.url+"/sse/alice?"+q, "")
	s.firstCursor(t)
	publishTo(t, c, "/publish/b", "before")
	ev := s.nextData(t)
	if ev.Data != "before" {
		t.Fatalf("on A: %+v", ev)
	}
	last := ev.LastEventID
	a.kill()
	s.Close()

	want := map[string][]string{}
	for i := range 5 {
		for _, topic := range []string{"/a", "/b", "/c/d"} {
			d := fmt.Sprintf("%s-%d", topic, i)
			publishTo(t, c, "/publish"+topic, d)
			want[topic] = append(want[topic], d)
		}
		if i < 2 {
			d := fmt.Sprintf("alice-%d", i)
			publishTo(t, c, "/clients/alice/events", d)
			want["alice"] = append(want["alice"], d)
		}
	}
	s = subscribe(t, b.url+"/sse/alice?"+q, last)
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("on B: %+v", ev)
	}
	got := map[string][]string{}
	for range 17 {
		ev := s.nextData(t)
		if ev.Type == "reset" {
			t.Fatalf("reset on B: %+v", ev)
		}
		key := ev.Data[:strings.LastIndexByte(ev.Data, '-')]
		got[key] = append(got[key], ev.Data)
	}
	for k, w := range want {
		if strings.Join(got[k], ",") != strings.Join(w, ",") {
			t.Fatalf("%s replayed on B: %q; want %q", k, got[k], w)
		}
	}
	publishTo(t, c, "/publish/a", "live")
	if ev := s.nextData(t); ev.Data != "live" {
		t.Fatalf("live on B: %+v", ev)
	}

	// Server-side subscribe on C reaches the stream on B.
	if code, out := request(t, "POST", c.url+"/clients/alice/subscriptions", `{"topics":["/room"]}`); code != 200 {
		t.Fatalf("subscribe on C: %d %v", code, out)
	}
	for ev, _ := s.next(t); ev.Data != "" || ev.Type != ""; ev, _ = s.next(t) { // its new cursor, id only
		t.Fatalf("before the subscribe's cursor: %+v", ev)
	}
	publishTo(t, c, "/publish/room", "r1")
	ev = s.nextData(t)
	if ev.Data != "r1" {
		t.Fatalf("after the subscribe: %+v", ev)
	}
	cursor := ev.LastEventID
	if code, out := request(t, "DELETE", c.url+"/clients/alice/subscriptions", `{"topics":["/a"]}`); code != 200 {
		t.Fatalf("unsubscribe on C: %d %v", code, out)
	}
	// The removal travels as alice's own key does: an event to her published after it comes after it.
	publishTo(t, c, "/clients/alice/events", "after-unsubscribe")
	for ev := s.nextData(t); ev.Data != "after-unsubscribe"; ev = s.nextData(t) {
		t.Fatalf("before the unsubscribe took effect: %+v", ev)
	}
	publishTo(t, c, "/publish/a", "not-read")
	publishTo(t, c, "/publish/room", "r2")
	if ev := s.nextData(t); ev.Data != "r2" {
		t.Fatalf("after unsubscribing /a: %+v; want r2 only", ev)
	}
	s.Close()

	// The cursor resumes the topic added by the server, on another node.
	publishTo(t, c, "/publish/room", "r3")
	s = subscribe(t, c.url+"/sse/alice?"+url.Values{"topic": {"/room"}}.Encode(), cursor)
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("on C: %+v", ev)
	}
	// In publish order per key; across keys to the millisecond of their Redis IDs (the same millisecond
	// cannot tell two Redis streams apart).
	var room, own []string
	for range 3 {
		if d := s.nextData(t).Data; strings.HasPrefix(d, "r") {
			room = append(room, d)
		} else {
			own = append(own, d)
		}
	}
	if strings.Join(room, " ") != "r2 r3" || strings.Join(own, " ") != "after-unsubscribe" {
		t.Fatalf("resume of /room and alice on C: /room %q, alice %q", room, own)
	}
}

// TestFunctionAnswerSubscribes: an async function answering {"subscribe": [...]} joins its caller to
// those topics before the caller sees the function_response, so a "join room" function needs no second
// call; "unsubscribe" leaves them.
func TestFunctionAnswerSubscribes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an edge process")
	}
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/join" {
			fmt.Fprint(w, `{"joined":"room","subscribe":["/room/7"]}`)
			return
		}
		fmt.Fprint(w, `{"unsubscribe":["/room/7"]}`)
	}))
	t.Cleanup(fn.Close)
	n := startNode(t, "solo")
	for _, name := range []string{"join", "leave"} {
		body := fmt.Sprintf(`{"name":%q,"endpoint":"%s/%s","timeout":5}`, name, fn.URL, name)
		if code, out := request(t, "POST", n.url+"/admin/functions", body); code != 201 {
			t.Fatalf("register %s: %d %v", name, code, out)
		}
	}
	s := subscribe(t, n.url+"/sse/alice", "")
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event %+v", ev)
	}
	if code, out := request(t, "POST", n.url+"/invoke/join", `{"client_id":"alice","async":true}`); code != 202 {
		t.Fatalf("invoke join: %d %v", code, out)
	}
	ev := s.nextData(t)
	if ev.Type != "function_response" || !strings.Contains(ev.Data, `"joined":"room"`) {
		t.Fatalf("after join: %+v", ev)
	}
	publishTo(t, n, "/publish/room/7", "hello room")
	if ev := s.nextData(t); ev.Data != "hello room" || !strings.HasPrefix(ev.LastEventID, fanout.CursorPrefix) {
		t.Fatalf("room event: %+v", ev)
	}
	if code, out := request(t, "POST", n.url+"/invoke/leave", `{"client_id":"alice","async":true}`); code != 202 {
		t.Fatalf("invoke leave: %d %v", code, out)
	}
	if ev := s.nextData(t); ev.Type != "function_response" {
		t.Fatalf("after leave: %+v", ev)
	}
	publishTo(t, n, "/publish/room/7", "gone")
	publishTo(t, n, "/clients/alice/events", "own")
	if ev := s.nextData(t); ev.Data != "own" {
		t.Fatalf("after leaving: %+v; want only her own event", ev)
	}
}
