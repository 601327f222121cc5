package edge_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
)

// TestCutSlowConsumerIsReset: a stream cut as a slow consumer is closed with SO_LINGER 0, so its socket
// is reset at once and the kernel drops what it still held, instead of keeping the socket in FIN-WAIT-1
// with its send buffer full against a client that never reads. The client sees ECONNRESET, not the
// rest of the data and then EOF.
func TestCutSlowConsumerIsReset(t *testing.T) {
	srv := start(t, teststack.Config{MaxQueueBytes: 64 << 10, SendBufferBytes: 16 << 10})
	stalled := stalledStream(t, srv.addr, "/subscribe/flood")
	defer stalled.Close()
	testutil.WaitFor(t, "the stream", func() bool { return srv.Stats().TopicStreams == 1 })
	body := fmt.Sprintf(`{"data":%q}`, strings.Repeat("x", 8<<10))
	for i := 0; srv.Stats().SlowConsumers == 0; i++ {
		if i == 1000 {
			t.Fatal("the stalled stream was never cut")
		}
		if code, out := post(t, srv.url+"/publish/flood", body); code != 200 {
			t.Fatalf("publish: %d %v", code, out)
		}
	}
	testutil.WaitFor(t, "the stalled stream to be closed", func() bool { return srv.Stats().TopicStreams == 0 })
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, stalled)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the cut stream ended with %v; want ECONNRESET (SO_LINGER 0)", err)
	}
}
