package fanout

import (
	"math"
	"sync"
)

// Defaults of the history bounds of a node (Config.HistoryMaxBytes, Config.HistoryMaxStreams).
const (
	DefaultHistoryMaxBytes   = 256 << 20
	DefaultHistoryMaxStreams = 100_000
)

// What a Budget counts beyond the bytes it can see: a kept frame's struct, ID header and allocation
// rounding, and a stream with history's node, map slot and key. Estimates, measured on amd64, so that
// many small events on many streams count about what they weigh on the heap.
const (
	frameOverhead  = 120
	streamOverhead = 128
)

// Budget bounds what the histories of the hubs sharing it (a node's topic and client hubs) keep in
// memory: bytes (frames and the streams holding them) and the number of streams with history. Without
// it history is bounded per stream only (HistorySize, HistoryTTL), so many large events or many streams
// could hold the heap until the TTL. Past either bound the oldest frames go first, whichever stream
// holds them; a client resuming from one of them gets the usual reset. A publish pays one uncontended
// lock here, nothing per subscriber.
type Budget struct {
	maxBytes   int64
	maxStreams int64

	mu         sync.Mutex
	head, tail *Frame // every frame in a history of these hubs, oldest first, but those evict took out
	bytes      int64
	streams    int64
	evicted    uint64
}

// BudgetStats is a snapshot of a Budget.
type BudgetStats struct {
	Bytes   int64  // counted bytes kept: frames, and the streams that keep them
	Streams int64  // streams with history
	Evicted uint64 // frames taken out of history by the bounds before their TTL, since the start
}

// NewBudget returns the budget of c's bounds (HistoryMaxBytes, HistoryMaxStreams: zero takes the
// default, negative removes the bound).
func NewBudget(c Config) *Budget {
	bound := func(v, def int64) int64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return math.MaxInt64
		}
		return v
	}
	return &Budget{
		maxBytes:   bound(c.HistoryMaxBytes, DefaultHistoryMaxBytes),
		maxStreams: bound(int64(c.HistoryMaxStreams), DefaultHistoryMaxStreams),
	}
}

// Stats returns the budget's counts.
func (b *Budget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Bytes: b.bytes, Streams: b.streams, Evicted: b.evicted}
}

func frameCost(f *Frame) int64 { return int64(cap(f.Bytes)+len(f.ID)) + frameOverhead }

// The methods below that do not lock are called with b.mu held.

func (b *Budget) linked(f *Frame) bool { return f.prev != nil || b.head == f }

func (b *Budget) link(f *Frame) {
	f.prev = b.tail
	if b.tail != nil {
		b.tail.next = f
	} else {
		b.head = f
	}
	b.tail = f
	b.bytes += frameCost(f)
}

func (b *Budget) unlink(f *Frame) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		b.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		b.tail = f.prev
	}
	f.prev, f.next = nil, nil
	b.bytes -= frameCost(f)
}

// release notes that a history let go of f (it expired or was overwritten); the last one takes it off
// the list. The caller also holds f's shard lock.
func (b *Budget) release(f *Frame) {
	f.refs--
	if f.refs == 0 && b.linked(f) {
		b.unlink(f)
	}
}

// resize accounts for a history whose footprint went from before to after.
func (b *Budget) resize(before, after int64) {
	b.bytes += after - before
	switch {
	case before == 0 && after > 0:
		b.streams++
	case before > 0 && after == 0:
		b.streams--
	}
}

func (b *Budget) over() bool { return b.bytes > b.maxBytes || b.streams > b.maxStreams }

// evict takes the oldest frames out of history until the budget holds. The caller holds no lock: each
// frame is taken off the list under b.mu, then out of its histories under its shard's lock.
func (b *Budget) evict() {
	for {
		b.mu.Lock()
		v := b.head
		if v == nil || !b.over() {
			b.mu.Unlock()
			return
		}
		b.unlink(v)
		b.evicted++
		b.mu.Unlock()
		b.drop(v)
	}
}

// drop takes v, which evict took off the list, out of the histories of its key and ancestors, with any
// frame before it there: those were taken off the list earlier (the list and every history are in
// publish order) by an evict that has not reached them yet. Streams left with neither history nor
// subscribers are forgotten at once rather than at the next sweep.
func (b *Budget) drop(v *Frame) {
	s := v.home
	s.mu.Lock()
	defer s.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, ok := v.key, true; ok; k, ok = parent(k) {
		n := s.nodes[k]
		if n == nil {
			continue
		}
		before := n.hist.footprint()
		for n.hist.len() > 0 && !b.linked(n.hist.at(0)) {
			n.hist.pop().refs--
		}
		b.resize(before, n.hist.footprint())
		if n.hist.len() == 0 && len(n.subs) == 0 && n.watchers == 0 {
			delete(s.nodes, k)
		}
	}
}
