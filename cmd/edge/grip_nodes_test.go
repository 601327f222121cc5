package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/internal/redistest"
)

// gripFeed is a GRIP function without any library: it checks Grip-Sig with key and holds a stream on
// the channels of ?channel= with a first event "welcome"; it records the Last-Event-ID of each call.
func gripFeed(t *testing.T, key string) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := jwt.Parse(r.Header.Get("Grip-Sig"), func(*jwt.Token) (any, error) { return []byte(key), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("sseedge"), jwt.WithExpirationRequired()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Channel", strings.Join(r.URL.Query()["channel"], ", "))
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: welcome\ndata: hi\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lastIDs...)
	}
}

// gripPublish posts one GRIP publish with an item per "channel:data".
func gripPublish(t *testing.T, url string, items ...string) {
	t.Helper()
	for i, it := range items {
		channel, data, _ := strings.Cut(it, ":")
		items[i] = fmt.Sprintf(`{"channel": %q, "formats": {"http-stream": {"content": "data: %s\n\n"}}}`, channel, data)
	}
	if code, out := request(t, "POST", url+"/publish/", `{"items": [`+strings.Join(items, ",")+`]}`); code != 200 {
		t.Fatalf("GRIP publish to %s: %d %v", url, code, out)
	}
}

// nextDispatched is the next event a browser dispatches: blocks without data (a multi-topic stream's
// id-only cursor line) are skipped.
func nextDispatched(t *testing.T, s *subscriber) (sse.Event, bool) {
	t.Helper()
	for {
		ev, ok := s.next(t)
		if !ok || ev.Data != "" {
			return ev, ok
		}
	}
}

// TestGripResumeAcrossNodes: with Redis, a GRIP stream on two channels held on node A whose node is
// killed reconnects to node B with its Last-Event-ID: the function is called again (with that ID), its
// first event comes again, then every event published to either channel while it was away, once, then
// live ones.
func TestGripResumeAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes")
	}
	const key = "grip-nodes-key"
	r := redistest.StartSingle(t)
	a := startNode(t, "grip-a", "REDIS_ADDR="+r.Addr(), "GRIP_KEY="+key)
	b := startNode(t, "grip-b", "REDIS_ADDR="+r.Addr(), "GRIP_KEY="+key)
	fn, calls := gripFeed(t, key)
	if code, out := request(t, "POST", a.url+"/admin/functions", fmt.Sprintf(`{"name":"feed","endpoint":"%s","grip":true,"timeout":5}`, fn.URL)); code != 201 {
		t.Fatalf("register: %d %v", code, out)
	}

	const path = "/grip/feed/live?channel=news&channel=sports"
	s := subscribe(t, a.url+path, "")
	if ev, _ := nextDispatched(t, s); ev.Type != "welcome" {
		t.Fatalf("first event on A: %+v", ev)
	}
	gripPublish(t, b.url, "news:one", "sports:two")
	var last string
	for _, want := range []string{"one", "two"} {
		ev, ok := nextDispatched(t, s)
		if !ok || ev.Data != want || ev.LastEventID == "" {
			t.Fatalf("on A: %+v %v, want %s", ev, ok, want)
		}
		last = ev.LastEventID
	}
	a.kill()
	s.Close()
	gripPublish(t, b.url, "sports:three", "news:four", "other:not held")

	s = subscribe(t, b.url+path, last)
	if ev, _ := nextDispatched(t, s); ev.Type != "welcome" || ev.LastEventID != last {
		t.Fatalf("first event on B: %+v, want welcome with id %s", ev, last)
	}
	if c := calls(); len(c) != 2 || c[0] != "" || c[1] != last {
		t.Fatalf("the function saw Last-Event-IDs %q, want [\"\" %q]", c, last)
	}
	// The missed events come first, once each: in publish order within a channel, root by root across
	// them (a multi-topic stream's replay), then live ones.
	missed := map[string]bool{}
	for range 2 {
		ev, ok := nextDispatched(t, s)
		if !ok || missed[ev.Data] || ev.Data != "three" && ev.Data != "four" {
			t.Fatalf("on B: %+v %v, want three and four once each (got %v so far)", ev, ok, missed)
		}
		missed[ev.Data] = true
	}
	gripPublish(t, b.url, "news:five")
	if ev, ok := nextDispatched(t, s); !ok || ev.Data != "five" {
		t.Fatalf("on B: %+v %v, want five", ev, ok)
	}
	gripPublish(t, b.url, "sports:six") // what follows five is six: nothing was sent twice
	if ev, ok := nextDispatched(t, s); !ok || ev.Data != "six" {
		t.Fatalf("on B after five: %+v %v, want six", ev, ok)
	}
}
