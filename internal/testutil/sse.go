package testutil

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// SSEStream is a stream the tests read as a browser would, with an SSE parser independent of the
// edge's (tmaxmax/go-sse), on an HTTP client of its own (no keep-alive, so closing it closes the
// connection). Heartbeats are dropped as they arrive.
type SSEStream struct {
	Resp   *http.Response
	LastID string // the last id seen by Next, as a browser's lastEventId

	events chan sse.Event
	cancel context.CancelFunc
	done   chan struct{}
}

// OpenSSE opens url with header and fails the test unless the answer is a 200 text/event-stream. The
// stream is closed when the test ends.
func OpenSSE(t testing.TB, url string, header http.Header) *SSEStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, resp.Header, body)
	}
	s := &SSEStream{Resp: resp, events: make(chan sse.Event, 20000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 4 << 20}) {
			if err != nil {
				return
			}
			if ev.Type != "heartbeat" {
				s.events <- ev
			}
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// Close closes the stream and waits for its reader to end. Closing twice is fine.
func (s *SSEStream) Close() {
	s.cancel()
	for range s.events {
	}
	<-s.done
}

// Events is the stream's blocks as they arrive (heartbeats aside), closed when it ends: for tests that
// wait with bounds of their own.
func (s *SSEStream) Events() <-chan sse.Event { return s.events }

// Block returns the next block of the stream, whether it carries data or not, and false once the
// stream ended.
func (s *SSEStream) Block(t testing.TB) (sse.Event, bool) {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-timer.C:
		t.Fatal("timed out waiting for an event")
		return sse.Event{}, false
	}
}

// Next returns the next event a browser would dispatch (a block with data), keeping the id of every
// block in LastID (an id-only block tells a multi-topic stream's client its cursor). It fails the test
// when the stream ends first.
func (s *SSEStream) Next(t testing.TB) sse.Event {
	t.Helper()
	for {
		if ev := s.nextBlock(t); ev.Data != "" {
			return ev
		}
	}
}

// Cursor waits for a block without data that carries an id (a multi-topic stream's cursor) and
// returns that id; an event with data before it fails the test.
func (s *SSEStream) Cursor(t testing.TB) string {
	t.Helper()
	for {
		ev := s.nextBlock(t)
		if ev.Data != "" {
			t.Fatalf("event %+v before the cursor", ev)
		}
		if ev.LastEventID != "" {
			return ev.LastEventID
		}
	}
}

// nextBlock is Block for a stream that must not end, keeping the block's id in LastID.
func (s *SSEStream) nextBlock(t testing.TB) sse.Event {
	t.Helper()
	ev, ok := s.Block(t)
	if !ok {
		t.Fatal("stream ended")
	}
	if ev.LastEventID != "" {
		s.LastID = ev.LastEventID
	}
	return ev
}

// Ended waits for the stream to end, and fails the test on an event with data before the end.
func (s *SSEStream) Ended(t testing.TB) {
	t.Helper()
	for {
		ev, ok := s.Block(t)
		if !ok {
			return
		}
		if ev.Data != "" {
			t.Errorf("event %+v before the end", ev)
		}
	}
}

// ExpectNone fails the test if an event with data arrives within d (blocks without data, such as a
// cursor, do not count; neither does the stream's end).
func (s *SSEStream) ExpectNone(t testing.TB, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	events := s.events
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil // ended: nothing more can come
				continue
			}
			if ev.Data != "" {
				t.Fatalf("unexpected event %+v", ev)
			}
		case <-timer.C:
			return
		}
	}
}
