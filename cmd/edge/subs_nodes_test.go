package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
)

// Server-side subscriptions kept in Redis outlive the node that made them: a client reconnecting to
// another node reads them there, its cursor resuming them.

// waitCursor reads events up to the first id-only event carrying a cursor (the one a server-side
// subscribe sends once the subscription is in place).
func (s *subscriber) waitCursor(t *testing.T) string {
	t.Helper()
	for {
		ev, ok := s.next(t)
		if !ok {
			t.Fatal("stream ended")
		}
		if strings.HasPrefix(ev.LastEventID, fanout.CursorPrefix) && ev.Data == "" && ev.Type == "" {
			return ev.LastEventID
		}
		if ev.Type != "connected" {
			t.Fatalf("before the cursor: %+v", ev)
		}
	}
}

// TestServerSideSubscriptionsAcrossNodes: alice, on node A with a plain /sse/alice, is subscribed to
// /room through A; A is SIGKILLed; two events to /room and one to her are published on B; she
// reconnects to B with the same URL and her last id and gets the three once, then live ones. A DELETE
// through B, then another reconnect to B: nothing more of /room.
func TestServerSideSubscriptionsAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and two edge processes")
	}
	r := redistest.StartSingle(t)
	env := "REDIS_ADDR=" + r.Addr()
	a, b := startNode(t, "node-a", env), startNode(t, "node-b", env)

	s := subscribe(t, a.url+"/sse/alice", "")
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("on A: %+v", ev)
	}
	if code, out := request(t, "POST", a.url+"/clients/alice/subscriptions", `{"topics":["/room"]}`); code != 200 {
		t.Fatalf("subscribe on A: %d %v", code, out)
	}
	s.waitCursor(t)
	publishTo(t, a, "/publish/room", "r1")
	ev := s.nextData(t)
	if ev.Data != "r1" {
		t.Fatalf("on A after the subscribe: %+v", ev)
	}
	a.kill()
	s.Close()

	publishTo(t, b, "/publish/room", "m1")
	publishTo(t, b, "/clients/alice/events", "a1")
	publishTo(t, b, "/publish/room", "m2")
	s = subscribe(t, b.url+"/sse/alice", ev.LastEventID)
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("on B: %+v", ev)
	}
	var room, own []string
	for range 3 { // in order per key; across keys to the millisecond of their Redis IDs
		ev := s.nextData(t)
		switch {
		case ev.Type == "reset":
			t.Fatalf("reset on B: %+v", ev)
		case strings.HasPrefix(ev.Data, "m"):
			room = append(room, ev.Data)
		default:
			own = append(own, ev.Data)
		}
	}
	if strings.Join(room, " ") != "m1 m2" || strings.Join(own, " ") != "a1" {
		t.Fatalf("replay on B: /room %q, alice %q; want m1 m2 and a1", room, own)
	}
	publishTo(t, b, "/publish/room", "live")
	if ev := s.nextData(t); ev.Data != "live" {
		t.Fatalf("live on B: %+v", ev)
	}

	if code, out := request(t, "DELETE", b.url+"/clients/alice/subscriptions", `{"topics":["/room"]}`); code != 200 {
		t.Fatalf("unsubscribe on B: %d %v", code, out)
	}
	publishTo(t, b, "/clients/alice/events", "a2") // after the removal, in order with it
	mark := s.nextData(t)
	if mark.Data != "a2" {
		t.Fatalf("after the unsubscribe: %+v; want a2", mark)
	}
	s.Close()
	publishTo(t, b, "/publish/room", "gone")
	publishTo(t, b, "/clients/alice/events", "a3")
	s = subscribe(t, b.url+"/sse/alice", mark.LastEventID)
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("on B again: %+v", ev)
	}
	publishTo(t, b, "/publish/room", "gone too")
	publishTo(t, b, "/clients/alice/events", "a4")
	for _, want := range []string{"a3", "a4"} {
		if ev := s.nextData(t); ev.Data != want {
			t.Fatalf("after unsubscribing: %+v; want %s (nothing of /room)", ev, want)
		}
	}
}

// TestStreamOpensWithoutStoredSubscriptions: with Redis gone, a client stream still opens, on its URL's
// topics, and the node counts the set it could not read.
func TestStreamOpensWithoutStoredSubscriptions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and an edge process")
	}
	r := redistest.StartSingle(t)
	n := startNode(t, "node-a", "REDIS_ADDR="+r.Addr())
	if code, out := request(t, "POST", n.url+"/clients/alice/subscriptions", `{"topics":["/room"]}`); code != 200 {
		t.Fatalf("subscribe: %d %v", code, out)
	}
	r.Kill()
	s := subscribe(t, n.url+"/sse/alice?topic=/pets", "") // fails the test unless 200
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event: %+v", ev)
	}
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "sseedge_client_subscription_reads_failed_total 1") {
		t.Fatalf("no failed read counted:\n%s", grepLines(string(body), "subscription"))
	}
}

// grepLines is the lines of s holding sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
