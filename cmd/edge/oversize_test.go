package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/internal/redistest"
)

// TestOversizedEvents is issue 18's item 3 on real node processes sharing a real Redis: an event whose
// frame would pass the queue bound is refused at publish (413 event_too_large) instead of cutting every
// subscriber, and an event just under the bound, followed at once by another, reaches fast subscribers
// on both nodes and a client resuming from before it, none of them cut.
func TestOversizedEvents(t *testing.T) {
	r := redistest.StartSingle(t)
	a := startNode(t, "a", "REDIS_ADDR="+r.Addr(), "MAX_BODY_BYTES=4194304") // the default 1 MiB queue bound
	b := startNode(t, "b", "REDIS_ADDR="+r.Addr(), "MAX_BODY_BYTES=4194304")
	onA := subscribe(t, a.url+"/subscribe/big", "")
	onB := subscribe(t, b.url+"/subscribe/big", "")
	publish := func(node *edgeNode, event, data string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]string{"event": event, "data": data})
		return request(t, "POST", node.url+"/publish/big", string(body))
	}
	if code, out := publish(a, "before", "x"); code != 200 {
		t.Fatalf("publish: %d %v", code, out)
	}
	var beforeID string
	for _, s := range []*subscriber{onA, onB} {
		ev, ok := s.next(t)
		if !ok || ev.Type != "before" {
			t.Fatalf("got %+v, want the first event", ev)
		}
		beforeID = ev.LastEventID
	}

	// 600 KB of two-byte lines: 2.1 MB framed. Refused with its reason on either node, never sent.
	lines := strings.Repeat("a\n", 300_000)
	for _, node := range []*edgeNode{a, b} {
		code, out := publish(node, "huge", lines)
		if code != 413 || out["code"] != "event_too_large" {
			t.Fatalf("publish of a 2.1 MB frame on %s: %d %v; want 413 event_too_large", node.name, code, out)
		}
	}
	// 1,000,000 bytes on one line: just under the bound framed.
	large := strings.Repeat("b", 1_000_000)
	code, out := publish(a, "large", large)
	if code != 200 {
		t.Fatalf("publish of a 1 MB event: %d %v", code, out)
	}
	if code, out := publish(a, "after", "y"); code != 200 {
		t.Fatalf("publish: %d %v", code, out)
	}
	resumed := subscribe(t, b.url+"/subscribe/big", beforeID)
	for i, s := range []*subscriber{onA, onB, resumed} {
		for _, want := range []string{"large", "after"} {
			ev, ok := s.next(t)
			if !ok {
				t.Fatalf("stream %d was cut before %s", i, want)
			}
			if ev.Type != want || (want == "large" && len(ev.Data) != len(large)) {
				t.Fatalf("got %s (%d bytes); want %s", ev.Type, len(ev.Data), want)
			}
		}
	}
}

// TestOversizedResultStillEndsTheInvocation: an async result too large to frame on the client's stream
// is replaced by a function_response with status error and code delivery_failed, never only logged.
func TestOversizedResultStillEndsTheInvocation(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, strings.Repeat("z", 200_000))
	}))
	t.Cleanup(fn.Close)
	node := startNode(t, "a", "MAX_QUEUE_BYTES=65536")
	if code, out := request(t, "POST", node.url+"/admin/functions", fmt.Sprintf(`{"name":"big","endpoint":%q}`, fn.URL)); code != 201 && code != 200 {
		t.Fatalf("register: %d %v", code, out)
	}
	s := subscribe(t, node.url+"/sse/alice", "")
	if ev, _ := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event %q", ev.Type)
	}
	if code, out := request(t, "POST", node.url+"/invoke/big", `{"client_id":"alice","async":true}`); code != 202 {
		t.Fatalf("invoke: %d %v", code, out)
	}
	ev, ok := s.next(t)
	if !ok || ev.Type != "function_response" {
		t.Fatalf("got %+v, want function_response", ev)
	}
	var got struct {
		Status string
		Error  struct{ Code string }
	}
	if err := json.Unmarshal([]byte(ev.Data), &got); err != nil || got.Status != "error" || got.Error.Code != "delivery_failed" {
		t.Fatalf("function_response %s; want status error, code delivery_failed", ev.Data)
	}
}
