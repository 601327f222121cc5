package fanout

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestIdempotencyKeyInMemory: without an engine, a retry with the same key is answered with the first
// publish's ID and published no second time, concurrent retries included; the key with another event
// is refused; after the window the key is free again.
func TestIdempotencyKeyInMemory(t *testing.T) {
	h := NewHub(Config{HistoryTTL: time.Hour})
	r := &recorder{}
	h.Subscribe("/orders", r, false, "")
	ev := Event{Data: []byte("paid"), IdempotencyKey: "order-1"}
	id, n, err := h.Publish(t.Context(), "/orders/1", ev)
	if err != nil || n != 1 {
		t.Fatalf("first publish: %s %d %v", id, n, err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 50)
	for i := range ids {
		wg.Go(func() {
			got, n, err := h.Publish(t.Context(), "/orders/1", ev)
			if err != nil || n != Replayed {
				t.Errorf("retry: %s %d %v; want the first ID, Replayed", got, n, err)
			}
			ids[i] = got
		})
	}
	wg.Wait()
	for _, got := range ids {
		if got != id {
			t.Fatalf("a retry answered %s; want %s", got, id)
		}
	}
	if len(r.frames) != 1 {
		t.Fatalf("the subscriber got %d frames; want 1", len(r.frames))
	}
	if _, _, err := h.Publish(t.Context(), "/orders/1", Event{Data: []byte("refunded"), IdempotencyKey: "order-1"}); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("the key with another event: %v; want ErrIdempotencyConflict", err)
	}
	if _, _, err := h.Publish(t.Context(), "/orders/1", Event{Data: []byte("x"), IdempotencyKey: "has space"}); !errors.Is(err, ErrBadEvent) {
		t.Fatalf("a key with a space: %v; want ErrBadEvent", err)
	}

	short := NewHub(Config{HistoryTTL: time.Millisecond})
	first, _, _ := short.Publish(t.Context(), "/w", ev)
	time.Sleep(5 * time.Millisecond) // the window itself is what passes
	if again, n, _ := short.Publish(t.Context(), "/w", ev); again == first || n == Replayed {
		t.Fatalf("after the window: %s %d; want a new publish", again, n)
	}
}

// TestIdempotencyKeysBounded: a hub remembers at most maxIdempotencyKeys keys, oldest forgotten first,
// and its queue does not grow past that.
func TestIdempotencyKeysBounded(t *testing.T) {
	h := NewHub(Config{HistorySize: -1, HistoryTTL: time.Hour})
	for i := range maxIdempotencyKeys + 10 {
		if _, _, err := h.Publish(t.Context(), "/k", Event{Data: []byte("x"), IdempotencyKey: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	h.idem.mu.Lock()
	entries, queued := len(h.idem.entries), len(h.idem.queue)-h.idem.head
	h.idem.mu.Unlock()
	if entries > maxIdempotencyKeys || queued > maxIdempotencyKeys {
		t.Fatalf("%d keys remembered, %d queued; bound %d", entries, queued, maxIdempotencyKeys)
	}
	if _, n, _ := h.Publish(t.Context(), "/k", Event{Data: []byte("x"), IdempotencyKey: "0"}); n == Replayed {
		t.Fatal("the oldest key is still remembered past the bound")
	}
	if _, n, _ := h.Publish(t.Context(), "/k", Event{Data: []byte("x"), IdempotencyKey: strconv.Itoa(maxIdempotencyKeys + 9)}); n != Replayed {
		t.Fatal("the newest key was forgotten")
	}
}
