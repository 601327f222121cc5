package edge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/transport"
)

// TestOpenerKeepAlive: the transport honours transport.Spec.KeepAlive on a multi-topic stream (a
// timeout under the tick: at every tick, in place of the heartbeat), and refuses, with a 500 and the
// opener's OnClose, a keep-alive it cannot honour (on a single-key stream).
func TestOpenerKeepAlive(t *testing.T) {
	closed := make(chan struct{}, 1)
	open := func(_ context.Context, r transport.Request) (transport.Spec, *transport.Refusal) {
		spec := transport.Spec{Kind: transport.Topic, Topics: []string{"/ka"}, First: []byte("\n"),
			KeepAlive: &transport.KeepAlive{Content: []byte(": ka\n"), Every: time.Millisecond}}
		if r.Path == "/ka/single" {
			spec.Topics, spec.Key, spec.OnClose = nil, "/ka", func() { closed <- struct{}{} }
		}
		return spec, nil
	}
	srv := startWith(t, teststack.Config{HeartbeatInterval: 50 * time.Millisecond}, func(s *teststack.Stack) { s.HandleStreams("/ka/", open) })
	c, r := rawStream(t, srv.addr, "/ka/multi")
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard only
	for seen := 0; seen < 3; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading keep-alives: %v", err)
		}
		switch {
		case strings.Contains(line, "heartbeat"):
			t.Fatalf("an edge heartbeat (%q) on a stream with its own keep-alive", line)
		case line == ": ka\n":
			seen++
		}
	}
	if st := srv.Stats(); st.KeepAlives < 3 {
		t.Errorf("Stats().KeepAlives = %d, want at least 3", st.KeepAlives)
	}

	status, body := rawRequest(t, srv.addr, []byte("GET /ka/single HTTP/1.1\r\nHost: x\r\n\r\n"))
	if status != 500 || !strings.Contains(string(body), "bad_keep_alive") {
		t.Fatalf("a keep-alive on a single-key stream: %d %s; want 500 bad_keep_alive", status, body)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose of the refused stream did not run")
	}
}
