package edge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
)

const registryShards = 64

// registry is the set of open streams, sharded so heartbeats walk it in batches while streams come and go.
type registry struct {
	shards [registryShards]struct {
		mu sync.Mutex
		m  map[uint64]*stream
	}
	n atomic.Int64
}

func (r *registry) init() {
	for i := range r.shards {
		r.shards[i].m = make(map[uint64]*stream)
	}
}

func (r *registry) add(st *stream) {
	sh := &r.shards[st.id%registryShards]
	sh.mu.Lock()
	sh.m[st.id] = st
	sh.mu.Unlock()
	r.n.Add(1)
}

func (r *registry) remove(st *stream) {
	sh := &r.shards[st.id%registryShards]
	sh.mu.Lock()
	_, ok := sh.m[st.id]
	delete(sh.m, st.id)
	sh.mu.Unlock()
	if ok {
		r.n.Add(-1)
	}
}

func (r *registry) len() int { return int(r.n.Load()) }

// each calls fn for every stream, holding one shard's lock at a time. fn must not close a stream (netpoll
// runs the cleanup, which calls remove, in Close): walk a snapshot for that.
func (r *registry) each(fn func(*stream)) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, st := range sh.m {
			fn(st)
		}
		sh.mu.Unlock()
	}
}

// snapshot returns the streams, for listings.
func (r *registry) snapshot() []*stream {
	out := make([]*stream, 0, r.len())
	r.each(func(st *stream) { out = append(out, st) })
	return out
}

// headReaper closes connections that have not completed a request head by their deadline, including
// those that never send a byte (netpoll calls no handler for them). It also keeps the part of a head
// that has arrived so far, so that no goroutine waits for the rest: netpoll calls the handler again
// when more input comes.
type headReaper struct {
	mu    sync.Mutex
	conns map[netpoll.Connection]*pendingHead
}

// pendingHead is a connection still sending its first request head.
type pendingHead struct {
	deadline time.Time
	partial  []byte // what has arrived, once the first part was not a whole head
}

func (h *headReaper) init() { h.conns = make(map[netpoll.Connection]*pendingHead) }

func (h *headReaper) add(c netpoll.Connection, deadline time.Time) {
	h.mu.Lock()
	h.conns[c] = &pendingHead{deadline: deadline}
	h.mu.Unlock()
}

// partial returns what has arrived of c's head so far, if any was kept.
func (h *headReaper) partial(c netpoll.Connection) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.conns[c]; p != nil {
		return p.partial
	}
	return nil
}

// keep stores head, all that has arrived of c's head so far, until more arrives. It reports false
// when c is no longer waiting for its head (reaped meanwhile).
func (h *headReaper) keep(c netpoll.Connection, head []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.conns[c]
	if p == nil {
		return false
	}
	p.partial = head
	return true
}

func (h *headReaper) remove(c netpoll.Connection) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (h *headReaper) reap(now time.Time) {
	var late []netpoll.Connection
	h.mu.Lock()
	for c, p := range h.conns {
		if now.After(p.deadline) || !c.IsActive() {
			late = append(late, c)
			delete(h.conns, c)
		}
	}
	h.mu.Unlock()
	for _, c := range late {
		c.Close()
	}
}

func (h *headReaper) closeAll() { h.reap(time.Now().Add(24 * time.Hour)) }
