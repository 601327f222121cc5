package redisengine

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/fanout"
)

// maxWaiting bounds the messages of one root held back while its gap is being filled; past it they are
// dropped (and counted as a gap left open), so a Redis that answers slowly cannot grow memory.
const maxWaiting = 10_000

// busMessage is one event (or end marker) from the bus, decoded.
type busMessage struct {
	ns, key     string
	id          string // the event's Redis ID; "" for an end marker, which is in no history
	prev        string // the root's previous event ID, as the publish script saw it
	chained     bool   // the message names prev (End and Refresh, kept in no history, send none; nor did nodes that predate gap detection)
	traceparent string
	frame       *fanout.Frame
}

// rootCursor is what this node last heard of one root on the bus.
type rootCursor struct {
	last    string // ID of the last event delivered
	heard   time.Time
	filling bool         // a gap is being filled from history; new messages wait
	waiting []busMessage // in bus order, delivered once the gap is filled
	// read holds the IDs the last read from a time (rootfill.go) delivered: their bus messages may still
	// be on the way after the fill ends, and those of a root's first event name no previous one to go
	// by. The first message not among them ends it, since the bus carries history's order.
	read map[string]struct{}
}

// gaps delivers bus messages in order and fills the gaps a node's bus leaves. Sharded pub/sub delivers
// at most once: while a node's subscription is being renewed (Redis restarted, a connection dropped),
// the events published meanwhile reach every node but that one. Each message names the root's
// previous event, so the next event of a root shows the node what it missed; those events are read
// from the root's history (XRANGE) and delivered first, and the root's later messages wait until they
// are. A gap shows when the root's next event arrives, or when the partition's subscription is
// confirmed again (catchUp). Events trimmed from history are lost to live subscribers (counted, and
// recovered by clients that resume), and so are those of a root this node had not heard of before.
type gaps struct {
	e *Engine

	mu        sync.Mutex
	roots     map[string]*rootCursor // ns + "\n" + root
	lastSweep time.Time
}

// receive delivers m, or holds it while its root's gap is filled. It never blocks on Redis: it runs on
// the subscription's reader. Only roots this node holds streams of get a cursor: every node hears every
// root on the bus, and most are other nodes' business.
func (g *gaps) receive(m busMessage, local fanout.Local) {
	if !m.chained && m.id != "" { // an event without prev, from a node that predates gap detection: nothing to go by
		g.e.dispatch(m, local)
		return
	}
	now := time.Now()
	root := fanout.Root(m.key)
	name := m.ns + "\n" + root
	g.mu.Lock()
	if g.roots == nil {
		g.roots, g.lastSweep = map[string]*rootCursor{}, now
	}
	g.sweep(now)
	c := g.roots[name]
	if c == nil {
		g.mu.Unlock()
		// An end marker tells nothing about the root's events; a root nobody here watches needs no
		// cursor. (A root's messages arrive one at a time, so no other can make its cursor meanwhile.)
		if m.id == "" || !local.Watching(root) {
			g.e.dispatch(m, local)
			return
		}
		g.mu.Lock()
		g.roots[name] = &rootCursor{last: m.id, heard: now}
		g.mu.Unlock()
		g.e.dispatch(m, local)
		return
	}
	if c.read != nil && m.id != "" && !c.filling {
		if has(c.read, m.id) {
			g.mu.Unlock()
			return
		}
		c.read = nil
	}
	switch {
	case c.filling:
		if len(c.waiting) >= maxWaiting {
			g.mu.Unlock()
			g.e.m.BusGapUnrecovered()
			g.e.log.Warn("bus: dropping an event while its root's gap is filled", "namespace", m.ns, "key", m.key)
			return
		}
		c.waiting = append(c.waiting, m)
		g.mu.Unlock()
		return
	case m.id != "" && m.prev != "" && c.last != "" && !idAfter(m.id, c.last):
		// Delivered already: a catch-up read it from history before the bus brought it. (A message
		// that starts a root's history, after it expired or Redis lost it, is always taken: its ID
		// comes from a clock that may be behind the one that made c.last.)
		g.mu.Unlock()
		return
	case m.id == "":
	case m.prev != "" && c.last != "" && m.prev != c.last:
		from := c.last
		c.filling, c.waiting, c.heard = true, append(c.waiting[:0], m), now
		g.mu.Unlock()
		g.e.gapFills.Add(1)
		g.e.wg.Go(func() { g.fill(name, m.ns, m.key, from, m.prev, local) })
		return
	default:
		c.last, c.heard = m.id, now
	}
	g.mu.Unlock()
	g.e.dispatch(m, local)
}

// fill delivers the events of the root after from up to and including to, read from history, then the
// messages that waited meanwhile, in order.
func (g *gaps) fill(name, ns, key, from, to string, local fanout.Local) {
	e := g.e
	root := fanout.Root(key)
	var entries []rueidis.XRangeEntry
	err := e.call(context.Background(), "recover", "XRANGE", func(ctx context.Context) (err error) {
		entries, err = e.client.Do(ctx, e.client.B().Xrange().Key(e.historyKey(e.partition(ns, root), ns, root)).
			Start("("+from).End(to).Count(int64(e.cfg.HistorySize)*2).Build()).AsXRange()
		return err
	})
	switch {
	case err != nil:
		e.m.BusGapUnrecovered()
		e.log.Warn("bus: a gap could not be filled from history", "namespace", ns, "root", root, "after", from, "until", to, "err", err)
	case len(entries) == 0 || entries[len(entries)-1].ID != to:
		e.m.BusGapUnrecovered()
		e.log.Warn("bus: a gap is partly gone from history", "namespace", ns, "root", root, "after", from, "until", to, "recovered", len(entries))
	default:
		e.log.Info("bus: events missed on the bus delivered from history", "namespace", ns, "root", root, "events", len(entries))
	}
	for _, en := range entries {
		f := en.FieldValues
		local.Deliver(f["k"], frame(en.ID, f["e"], f["u"], f["d"]))
	}
	e.m.BusRecovered(len(entries))
	g.mu.Lock()
	c := g.roots[name]
	g.mu.Unlock()
	if c != nil {
		g.drain(c, to, nil, local)
	}
}

// drain delivers the messages that waited on c while its gap was filled, without those history gave
// (read: their IDs, when history was read from a time rather than an event), then ends the filling.
// c.last becomes last first: delivered, or counted as lost, either way the root is heard up to there.
func (g *gaps) drain(c *rootCursor, last string, read map[string]struct{}, local fanout.Local) {
	e := g.e
	for first := true; ; first = false {
		g.mu.Lock()
		if first {
			c.last = last
		}
		waiting := c.waiting
		if len(waiting) == 0 {
			c.filling, c.read = false, read
			g.mu.Unlock()
			return
		}
		c.waiting = nil
		fresh := waiting[:0]
		for _, m := range waiting {
			switch {
			case m.id == "":
			case read != nil && has(read, m.id):
				continue
			case m.prev != "" && c.last != "" && !idAfter(m.id, c.last):
				continue // in what history gave (a catch-up reads up to the newest entry, which may still be on the bus)
			default:
				c.last = m.id
			}
			fresh = append(fresh, m)
		}
		c.heard = time.Now()
		g.mu.Unlock()
		for _, m := range fresh {
			e.dispatch(m, local)
		}
	}
}

// sweep forgets roots not heard of for longer than history is kept, at most once per that period, so
// the map holds the roots that are live. The caller holds g.mu.
func (g *gaps) sweep(now time.Time) {
	ttl := g.e.cfg.HistoryTTL
	if now.Sub(g.lastSweep) < ttl {
		return
	}
	g.lastSweep = now
	for name, c := range g.roots {
		if !c.filling && now.Sub(c.heard) > ttl {
			delete(g.roots, name)
		}
	}
}

// catchUp compares, after partition p's subscription was renewed, the last event of each of its roots
// in history with the last one this node heard, and fills the difference: the events a quiet root got
// while the subscription was down would otherwise wait for the root's next event.
func (g *gaps) catchUp(ctx context.Context, p int) {
	e := g.e
	type root struct{ name, ns, root string }
	var roots []root
	g.mu.Lock()
	for name := range g.roots {
		ns, r, _ := strings.Cut(name, "\n")
		if e.partition(ns, r) == p {
			roots = append(roots, root{name, ns, r})
		}
	}
	g.mu.Unlock()
	if len(roots) == 0 {
		return
	}
	var tops []rueidis.RedisResult
	err := e.call(ctx, "catch up", "XREVRANGE", func(ctx context.Context) error {
		cmds := make(rueidis.Commands, len(roots))
		for i, r := range roots {
			cmds[i] = e.client.B().Xrevrange().Key(e.historyKey(p, r.ns, r.root)).End("+").Start("-").Count(1).Build()
		}
		tops = e.client.DoMulti(ctx, cmds...)
		return nil
	})
	if err != nil {
		return
	}
	for i, r := range roots {
		entries, err := tops[i].AsXRange()
		if err != nil || len(entries) == 0 {
			continue
		}
		top := entries[0].ID
		e.mu.RLock()
		local := e.hubs[r.ns]
		e.mu.RUnlock()
		g.mu.Lock()
		c := g.roots[r.name]
		if local == nil || c == nil || c.filling || !idAfter(top, c.last) {
			g.mu.Unlock()
			continue
		}
		from := c.last
		c.filling, c.waiting = true, c.waiting[:0]
		g.mu.Unlock()
		e.wg.Go(func() { g.fill(r.name, r.ns, r.root, from, top, local) })
	}
}

// idAfter reports whether Redis stream ID a comes after b ("ms-seq", compared as numbers).
func idAfter(a, b string) bool {
	ams, aseq, ok1 := parseID(a)
	bms, bseq, ok2 := parseID(b)
	if !ok1 || !ok2 {
		return false
	}
	return ams > bms || (ams == bms && aseq > bseq)
}

// parseID splits a Redis stream ID into its milliseconds and sequence number.
func parseID(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	ms, err1 = strconv.ParseUint(m, 10, 64)
	seq, err2 = strconv.ParseUint(s, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

func has(set map[string]struct{}, k string) bool {
	_, ok := set[k]
	return ok
}
