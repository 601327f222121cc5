package edge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/transport"
)

// TestOpenerOnCloseRunsForRefusedStreams: a stream an opener said yes to runs its OnClose when it ends,
// and also when the edge refuses to hold it (here: too many streams from the address), so that the
// opener's own state (MCP's session) never outlives a stream that was never held.
func TestOpenerOnCloseRunsForRefusedStreams(t *testing.T) {
	closed := make(chan string, 4)
	open := func(_ context.Context, r transport.Request) (transport.Spec, *transport.Refusal) {
		key := strings.TrimPrefix(r.Path, "/held/")
		return transport.Spec{Key: "held-" + key, First: []byte("event: hello\ndata: " + key + "\n\n"),
			OnClose: func() { closed <- key }}, nil
	}
	srv := startWith(t, teststack.Config{MaxStreamsPerIP: 1}, func(s *teststack.Stack) { s.HandleStreams("/held/", open) })
	held, r := rawStream(t, srv.addr, "/held/a")
	defer held.Close()
	if err := readUntil(r, "data: a"); err != nil {
		t.Fatalf("first event of the held stream: %v", err)
	}

	status, body := rawRequest(t, srv.addr, []byte("GET /held/b HTTP/1.1\r\nHost: x\r\n\r\n"))
	if status != 429 || !strings.Contains(string(body), "too_many_streams") {
		t.Fatalf("second stream from the address: %d %s; want 429", status, body)
	}
	waitClosed := func(want string) {
		t.Helper()
		select {
		case got := <-closed:
			if got != want {
				t.Fatalf("OnClose ran for %q; want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("OnClose of %q did not run", want)
		}
	}
	waitClosed("b")
	held.Close()
	waitClosed("a")
}
