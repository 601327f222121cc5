package redisengine

import (
	"context"
	"sync"
	"time"
)

// DefaultLinger is the default of Config.Linger: how long a root's channel stays subscribed after its
// last local stream leaves, so a stream reconnecting in a loop does not churn Redis (Centrifugo waits
// as long before it unsubscribes).
const DefaultLinger = time.Second

// rootSub is this node's subscription to one root's channel.
type rootSub struct {
	name, ns, root, channel string
	p                       int
	watched                 bool          // the hub holds a stream of the root
	since                   time.Time     // when the hub began to watch it: events from then on are owed
	idle                    time.Time     // when the last stream left; zero while watched
	fresh                   bool          // the next confirmation starts the root afresh from since
	ready                   chan struct{} // closed by that confirmation
	floor                   string        // the newest Last-Event-ID a stream resumed from while fresh
	leaving                 bool          // SUNSUBSCRIBE due or sent: the subscription ends unless watched again
	sent                    bool          // its SSUBSCRIBE went out on the partition's current connection
	pending                 int           // SUNSUBSCRIBEs sent on that connection and not yet confirmed
}

// change is a hub's Watch or Unwatch, queued.
type change struct {
	ns, root string
	watch    bool
	at       time.Time
}

// interest keeps one subscription per root that the node's hubs watch, on the root's own channel (in
// the root's slot, beside its history). Watch and Unwatch only queue; one loop applies the changes in
// batches, subscribes a root on its first watcher and sends SUNSUBSCRIBE once the root has had none for
// the linger, so a root watched again within it costs Redis nothing. The roots of a partition share one
// dedicated pub/sub connection (subconn.go), which takes them in one SSUBSCRIBE a batch: a watched root
// costs its rootSub and cursor, not a goroutine. A connection that ends has every root of its
// partition subscribed again, with back-off, on a new one; a root is retried until Redis confirms it.
type interest struct {
	e      *Engine
	linger time.Duration

	mu    sync.Mutex
	roots map[string]*rootSub
	idle  map[string]*rootSub // the roots lingering: not watched, not yet leaving
	start []*rootSub          // subscriptions to make
	parts []*partSubs         // per partition: its connection and the roots it carries
	wake  chan struct{}
}

func (in *interest) init(e *Engine) {
	in.e, in.linger = e, e.cfg.Linger
	in.roots, in.idle = map[string]*rootSub{}, map[string]*rootSub{}
	in.wake = make(chan struct{}, 1)
	in.parts = make([]*partSubs, e.cfg.Partitions)
	for p := range in.parts {
		in.parts[p] = &partSubs{in: in, p: p, roots: map[string]*rootSub{}}
	}
}

// poke wakes the loop.
func (in *interest) poke() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// queue applies a change to the state and leaves what needs Redis to the loop. It is called with a
// hub's shard lock held: it never waits for anything but in.mu.
func (in *interest) queue(c change) {
	e := in.e
	name := c.ns + "\n" + c.root
	in.mu.Lock()
	rs := in.roots[name]
	switch {
	case c.watch && rs == nil:
		p := e.partition(c.ns, c.root)
		rs = &rootSub{name: name, ns: c.ns, root: c.root, channel: e.rootChannel(p, c.ns, c.root), p: p,
			watched: true, since: c.at, fresh: true, ready: make(chan struct{})}
		in.roots[name] = rs
		in.start = append(in.start, rs)
	case c.watch:
		delete(in.idle, name)
		if rs.leaving && !rs.watched { // watched again while its SUNSUBSCRIBE is on the way
			rs.since, rs.fresh, rs.ready, rs.floor = c.at, true, make(chan struct{}), ""
		}
		if rs.leaving { // subscribe it again (Redis confirms even a channel still subscribed)
			rs.leaving = false
			in.start = append(in.start, rs)
		}
		rs.watched, rs.idle = true, time.Time{}
	case rs != nil:
		rs.watched, rs.idle = false, c.at
		if !rs.leaving {
			in.idle[name] = rs
		}
	}
	in.mu.Unlock()
	in.poke()
}

// run applies the queued changes and ends lingering subscriptions until ctx ends.
func (in *interest) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			in.closeAll()
			return
		case <-in.wake:
		case <-timer.C:
		}
		next := in.apply(ctx, time.Now())
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// apply moves newly watched roots to their partitions, has those idle for the linger leave, sends
// each partition's batch (sendAll), and returns how long until the next linger or retry is due.
func (in *interest) apply(ctx context.Context, now time.Time) time.Duration {
	e := in.e
	next := time.Hour
	in.mu.Lock()
	for _, rs := range in.start {
		in.parts[rs.p].add(rs)
	}
	in.start = nil
	for name, rs := range in.idle {
		if due := rs.idle.Add(in.linger); due.After(now) {
			next = min(next, due.Sub(now))
			continue
		}
		delete(in.idle, name)
		in.parts[rs.p].leave(rs)
	}
	held := len(in.roots)
	in.mu.Unlock()
	e.m.BusSubscriptions(held)
	return min(next, in.sendAll(ctx, now))
}

// confirmed is Redis confirming rs's subscription, on the connection's reader, before any message the
// subscription brings: from here on the bus carries the root's events, and history covers the time
// before, from the root's first watcher on (fresh) or from the last event heard (a renewal).
func (in *interest) confirmed(rs *rootSub) {
	in.mu.Lock()
	fresh, since, ready := rs.fresh, rs.since, rs.ready
	rs.fresh = false
	in.mu.Unlock()
	done := func() {}
	if fresh {
		done = func() { close(ready) }
	}
	in.e.gaps.subscribed(rs, fresh, since, done)
}

// wait returns once the subscription of a watched root is confirmed and its first history read
// delivered, or ctx ends: a resuming stream reads history only then, so the bus carries whatever that
// read does not see.
func (in *interest) wait(ctx context.Context, ns, root string) {
	in.mu.Lock()
	var ready chan struct{}
	if rs := in.roots[ns+"\n"+root]; rs != nil {
		ready = rs.ready
	}
	in.mu.Unlock()
	if ready == nil {
		return
	}
	select {
	case <-ready:
	case <-ctx.Done():
	}
}

// BusStats is what the bus has cost this node: the event messages it received, those of them no local
// stream read, the gaps in a root's events it read history to fill, and the per-root subscriptions it
// holds now.
type BusStats struct {
	Received, Unwanted, Gaps uint64
	Subscriptions            int
}

// BusStats reports the bus's cost so far (also in the sseedge_bus_* metrics).
func (e *Engine) BusStats() BusStats {
	e.interest.mu.Lock()
	n := len(e.interest.roots)
	e.interest.mu.Unlock()
	return BusStats{Received: e.received.Load(), Unwanted: e.unwanted.Load(), Gaps: e.gapFills.Load(), Subscriptions: n}
}

// resumed notes that a stream of a watched root resumes from lastID (a Redis ID): what it has seen
// need not be read again when the root's subscription is made, so the first read starts after it.
func (in *interest) resumed(ns, root, lastID string) {
	if _, _, ok := parseID(lastID); !ok {
		return
	}
	in.mu.Lock()
	if rs := in.roots[ns+"\n"+root]; rs != nil && (rs.floor == "" || idAfter(lastID, rs.floor)) {
		rs.floor = lastID
	}
	in.mu.Unlock()
}

// floorOf returns rs.floor.
func (in *interest) floorOf(rs *rootSub) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return rs.floor
}

// Ready returns once this node's subscription to root's channel in namespace ns is confirmed and the
// history its streams were owed meanwhile delivered (at once when the node does not watch root), or
// ctx ends: events published after it reach the node over the bus rather than from history.
func (e *Engine) Ready(ctx context.Context, ns, root string) error {
	e.interest.wait(ctx, ns, root)
	return ctx.Err()
}
