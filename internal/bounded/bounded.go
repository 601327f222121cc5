// Package bounded runs background work, with a bound on how much runs at once, that a shutdown waits
// for: async invocations, MCP messages answered on a stream.
package bounded

import (
	"context"
	"sync"
)

// Group is background work in flight: at most its capacity at once, each running under a context that
// ends when Close stops waiting for it.
type Group struct {
	slots   chan struct{}
	base    context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex // guards closing and wg.Add against Close's wg.Wait
	closing bool
	wg      sync.WaitGroup
}

// New returns a group that runs at most max pieces of work at once.
func New(max int) *Group {
	base, cancel := context.WithCancel(context.Background())
	return &Group{slots: make(chan struct{}, max), base: base, cancel: cancel}
}

// Start takes a slot for one piece of work, or says why it cannot: the group is full, or closing. A
// caller that got ok calls Done when the work ends.
func (g *Group) Start() (ok, closing bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false, true
	}
	select {
	case g.slots <- struct{}{}:
		g.wg.Add(1)
		return true, false
	default:
		return false, false
	}
}

// Done gives back the slot of a piece of work that ended.
func (g *Group) Done() {
	<-g.slots
	g.wg.Done()
}

// Context is the context work runs under: detached from the requests that started it, canceled when
// Close stops waiting.
func (g *Group) Context() context.Context { return g.base }

// Cap is how much work may run at once.
func (g *Group) Cap() int { return cap(g.slots) }

// Close refuses new work and waits for the work in flight until ctx ends; then whatever is left is
// canceled, and ctx's error returned.
func (g *Group) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { // ends when the last piece of work does
		g.wg.Wait()
		close(done)
	}()
	defer g.cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
