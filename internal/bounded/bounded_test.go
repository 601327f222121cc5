package bounded

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGroup(t *testing.T) {
	g := New(2)
	for range 2 {
		if ok, closing := g.Start(); !ok || closing {
			t.Fatalf("Start = %v, %v; want a slot", ok, closing)
		}
	}
	if ok, closing := g.Start(); ok || closing {
		t.Fatalf("Start on a full group = %v, %v; want refused, not closing", ok, closing)
	}
	g.Done()

	// Close waits for the work in flight, refuses new work meanwhile, and cancels what outlives ctx.
	ended := make(chan struct{})
	go func() {
		<-g.Context().Done() // the one piece left never ends by itself
		g.Done()
		close(ended)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v; want the deadline", err)
	}
	<-ended
	if ok, closing := g.Start(); ok || !closing {
		t.Fatalf("Start after Close = %v, %v; want refused as closing", ok, closing)
	}

	h := New(1)
	h.Start()
	go h.Done()
	if err := h.Close(context.Background()); err != nil {
		t.Fatalf("Close after the work ended = %v", err)
	}
}
