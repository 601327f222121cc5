package main

import (
	"context"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// TestGripHandlerBehindEdge: the Go GRIP function, registered with "grip": true on a real node, holds
// a stream through the edge: the client gets its welcome event, then what POST /publish/ sends to the
// channel; /grip/hello is proxied.
func TestGripHandlerBehindEdge(t *testing.T) {
	key := []byte("example-key")
	fnSrv := httptest.NewServer(NewGripHandler(key))
	defer fnSrv.Close()
	signer, err := grip.NewSigner(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	inv := invoker.New(invoker.Config{})
	defer inv.Close()
	store := new(registry.MemoryStore)
	fn, err := registry.Function{Name: "example", Endpoint: fnSrv.URL + "/grip", Grip: true}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
	stack, err := teststack.New(teststack.Config{Logger: slog.New(slog.DiscardHandler), HeartbeatInterval: time.Second,
		GripPublish: true, GripSigner: signer, GripStore: store, GripInvoker: inv})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- stack.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stack.Shutdown(ctx)
		<-served
	}()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

	resp, err := client.Get(base + "/grip/example/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "{\"hello\":\"world\"}\n" {
		t.Fatalf("/hello: %d %s", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/grip/example/stream?channel=sports", nil)
	resp, err = (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	pull, stop := iterPull(sse.Read(resp.Body, nil))
	defer stop()
	next := func() (sse.Event, error, bool) { // what a browser dispatches: not the id-only cursor line
		for {
			ev, err, ok := pull()
			if !ok || err != nil || ev.Data != "" {
				return ev, err, ok
			}
		}
	}
	if ev, err, ok := next(); !ok || err != nil || ev.Type != "welcome" || !strings.Contains(ev.Data, `"sports"`) {
		t.Fatalf("first event %+v %v %v", ev, err, ok)
	}
	pub, err := client.Post(base+"/publish/", "application/json",
		strings.NewReader(`{"items": [{"channel": "sports", "formats": {"http-stream": {"content": "event: score\ndata: 2-1\n\n"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	pub.Body.Close()
	if pub.StatusCode != 200 {
		t.Fatalf("publish: %d", pub.StatusCode)
	}
	if ev, err, ok := next(); !ok || err != nil || ev.Type != "score" || ev.Data != "2-1" || ev.LastEventID == "" {
		t.Fatalf("published event %+v %v %v", ev, err, ok)
	}
}

// iterPull is iter.Pull2 for go-sse's event sequence, returning the event, its error and whether one came.
func iterPull(seq func(yield func(sse.Event, error) bool)) (func() (sse.Event, error, bool), func()) {
	return iter.Pull2(seq)
}
