package mcp

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// leases renews, every third of the store's lease, the HTTP+SSE sessions whose streams this node holds,
// so that they live as long as their streams and a lease past this node's death at most. newLeases
// starts it and close stops it; a nil *leases (a store without leases) does nothing.
type leases struct {
	store SessionRenewer
	log   *slog.Logger

	mu  sync.Mutex
	ids map[string]struct{}

	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

func newLeases(store SessionRenewer, log *slog.Logger) *leases {
	ctx, stop := context.WithCancel(context.Background())
	l := &leases{store: store, log: log, ids: map[string]struct{}{}, stop: stop, done: make(chan struct{})}
	go l.run(ctx)
	return l
}

// hold starts renewing session id; release stops.
func (l *leases) hold(id string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.ids[id] = struct{}{}
	l.mu.Unlock()
}

func (l *leases) release(id string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.ids, id)
	l.mu.Unlock()
}

func (l *leases) run(ctx context.Context) {
	defer close(l.done)
	period := l.store.Lease() / 3
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	var ids []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		ids = ids[:0]
		l.mu.Lock()
		for id := range l.ids {
			ids = append(ids, id)
		}
		l.mu.Unlock()
		// A renewal that fails is tried again next period, two more times before a lease runs out; the
		// store's client counts and traces the failed commands.
		rctx, cancel := context.WithTimeout(ctx, period)
		if err := l.store.Renew(rctx, ids); err != nil && ctx.Err() == nil {
			l.log.Warn("renewing HTTP+SSE session leases failed", "sessions", len(ids), "err", err)
		}
		cancel()
	}
}

// close stops the renewals and waits for the one in progress; it may be called more than once.
func (l *leases) close() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.stop()
		<-l.done
	})
}
