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
// those that never send a byte (netpoll calls no handler for them).
type headReaper struct {
	mu    sync.Mutex
	conns map[netpoll.Connection]time.Time
}

func (h *headReaper) init() { h.conns = make(map[netpoll.Connection]time.Time) }

func (h *headReaper) add(c netpoll.Connection, deadline time.Time) {
	h.mu.Lock()
	h.conns[c] = deadline
	h.mu.Unlock()
}

func (h *headReaper) remove(c netpoll.Connection) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (h *headReaper) reap(now time.Time) {
	var late []netpoll.Connection
	h.mu.Lock()
	for c, d := range h.conns {
		if now.After(d) || !c.IsActive() {
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
