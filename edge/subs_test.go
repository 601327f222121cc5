package edge_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// Server-side subscriptions outlive the connection: the node keeps each client's set, and a stream of
// the client opened later reads it beside its URL's topics, its cursor resuming them.

// unsubscribe sends DELETE /clients/{client}/subscriptions.
func unsubscribe(t *testing.T, srv *testServer, client, body string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", srv.url+"/clients/"+client+"/subscriptions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", resp.StatusCode)
	}
}

// dataOf is the data of events, joined by spaces.
func dataOf(evs []sse.Event) string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Data
	}
	return strings.Join(out, " ")
}

// TestServerSideSubscriptionsSurviveReconnect: alice is subscribed to /room/1 server-side, drops her
// connection, misses two events of it and one of her own; reconnecting with the same URL and her last
// id replays the three once, in order per key, then live ones. After a DELETE, a reconnect reads none
// of /room/1.
func TestServerSideSubscriptionsSurviveReconnect(t *testing.T) {
	srv := start(t, teststack.Config{})
	u := srv.url + "/sse/alice"
	s := openSSE(t, u, nil)
	if ev := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event %+v", ev)
	}
	if code, out := post(t, srv.url+"/clients/alice/subscriptions", `{"topics":["/room/1"]}`); code != 200 {
		t.Fatalf("subscribe: %d %v", code, out)
	}
	s.waitCursor(t)
	publish(t, srv, "/room/1", "", "r1")
	ev := s.nextEvent(t)
	if ev.Data != "r1" {
		t.Fatalf("live after subscribe: %+v", ev)
	}
	s.Close()

	publish(t, srv, "/room/1", "", "m1")
	publishClient(t, srv, "alice", "a1")
	publish(t, srv, "/room/1", "", "m2")
	publish(t, srv, "/other", "", "not read")

	r := openSSE(t, u, http.Header{"Last-Event-Id": {ev.LastEventID}})
	if ev := r.next(t); ev.Type != "connected" {
		t.Fatalf("first event on reconnect %+v", ev)
	}
	// In order per key (across keys, in memory, events of one millisecond have no order).
	if got := strings.ReplaceAll(dataOf(r.collect(t, 3)), "a1 ", ""); got != "m1 m2" && got != "m1 m2 a1" {
		t.Fatalf("replay after reconnect: %q; want m1, m2 and a1, once each", got)
	}
	publish(t, srv, "/room/1", "", "live")
	last := r.nextEvent(t)
	if last.Data != "live" {
		t.Fatalf("after the replay: %+v; want the live event", last)
	}
	r.expectNone(t, 50*time.Millisecond) // each event once

	unsubscribe(t, srv, "alice", `{"topics":["/room/1"]}`)
	publishClient(t, srv, "alice", "a2")
	mark := r.nextEvent(t)
	if mark.Data != "a2" {
		t.Fatalf("after unsubscribe: %+v; want a2", mark)
	}
	r.Close()
	publish(t, srv, "/room/1", "", "gone")
	publishClient(t, srv, "alice", "a3")
	q := openSSE(t, u, http.Header{"Last-Event-Id": {mark.LastEventID}})
	if ev := q.next(t); ev.Type != "connected" {
		t.Fatalf("first event after unsubscribe %+v", ev)
	}
	if ev := q.nextEvent(t); ev.Data != "a3" {
		t.Fatalf("reconnect after unsubscribe: %+v; want a3 only", ev)
	}
	publish(t, srv, "/room/1", "", "gone too")
	q.expectNone(t, 50*time.Millisecond)
}

// TestServerSideSubscriptionsStoredAhead: a client with no stream open is subscribed all the same (200,
// streams 0), and its first stream reads the topic; URL topics and stored ones add up, and a client
// whose last id is a plain one (its stream was single-key) resumes its own key after it, the stored
// topic starting with a reset. The set is bounded by MaxTopicsPerStream.
func TestServerSideSubscriptionsStoredAhead(t *testing.T) {
	srv := start(t, teststack.Config{MaxTopicsPerStream: 3})
	s := openSSE(t, srv.url+"/sse/bob", nil)
	s.next(t) // connected
	publishClient(t, srv, "bob", "b1")
	plain := s.nextEvent(t)
	s.Close()
	testutil.WaitFor(t, "bob's stream closed", func() bool { return srv.Stats().ClientStreams == 0 })

	code, out := post(t, srv.url+"/clients/bob/subscriptions", `{"topics":["/room/2","/room/3"]}`)
	if code != 200 || out["streams"] != 0.0 {
		t.Fatalf("subscribe with no stream: %d %v", code, out)
	}
	if code, out := post(t, srv.url+"/clients/bob/subscriptions", `{"topics":["/a","/b"]}`); code != 400 || out["code"] != "too_many_topics" {
		t.Fatalf("past the bound: %d %v; want 400 too_many_topics", code, out)
	}
	publishClient(t, srv, "bob", "b2")

	r := openSSE(t, srv.url+"/sse/bob", http.Header{"Last-Event-Id": {plain.LastEventID}})
	r.next(t) // connected
	var resets, data []string
	for _, ev := range r.collect(t, 3) {
		if ev.Type == "reset" {
			resets = append(resets, ev.Data)
			continue
		}
		data = append(data, ev.Data)
	}
	if len(resets) != 2 || !strings.Contains(resets[0], `"topic":"/room/2"`) || !strings.Contains(resets[1], `"topic":"/room/3"`) ||
		strings.Join(data, " ") != "b2" {
		t.Fatalf("resume from a plain id: resets %q, data %q; want the two rooms' resets, then b2", resets, data)
	}
	r.Close()

	q := openSSE(t, topicsURL(srv.url+"/sse/bob", "/pets"), nil)
	q.waitCursor(t)
	publish(t, srv, "/pets", "", "p")
	publish(t, srv, "/room/3", "", "r3")
	publish(t, srv, "/a", "", "not read")
	if got := dataOf(q.collect(t, 2)); got != "p r3" {
		t.Fatalf("URL and stored topics: %q; want p r3", got)
	}
}

// TestStoredSubscriptionsBypassTheToken: carol's token covers /pets only; her stored /room is read all
// the same (the server decided), and a token refresh that does not cover /room keeps it.
func TestStoredSubscriptionsBypassTheToken(t *testing.T) {
	srv, _ := tokenServer(t)
	if code, out := post(t, srv.url+"/clients/carol/subscriptions", `{"topics":["/room"]}`); code != 200 {
		t.Fatalf("subscribe: %d %v", code, out)
	}
	token := sign(t, tokenSecret, "carol", []string{"/pets"}, time.Minute)
	s := openSSE(t, topicsURL(srv.url+"/sse/carol", "/pets")+"&token="+token, nil)
	s.waitCursor(t)
	if code, out := refresh(t, srv, "carol", sign(t, tokenSecret, "carol", []string{"/pets"}, time.Hour)); code != 200 {
		t.Fatalf("refresh: %d %v", code, out)
	}
	publish(t, srv, "/room", "", "r")
	publish(t, srv, "/pets", "", "p")
	if got := dataOf(s.collect(t, 2)); got != "r p" {
		t.Fatalf("after the refresh: %q; want r p", got)
	}
}
