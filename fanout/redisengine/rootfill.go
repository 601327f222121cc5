package redisengine

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/fanout"
)

// subscribed starts or renews the bus cursor of rs's root once Redis has confirmed its subscription.
// It runs on the connection's reader, before the messages the subscription brings, so the cursor
// holds them back while history is read. A fresh subscription reads the root's history from the time
// its first stream here opened (in Redis's clock, bounded from below), so the events published while
// the subscription was being made reach those streams; a renewed one reads on from the last event
// heard. Either way the messages held meanwhile follow, without those history gave; then done is
// called (at once when there is nothing to do).
func (g *gaps) subscribed(rs *rootSub, fresh bool, since time.Time, done func()) {
	e := g.e
	e.mu.RLock()
	local := e.hubs[rs.ns]
	e.mu.RUnlock()
	if local == nil {
		done()
		return
	}
	now := time.Now()
	g.mu.Lock()
	if g.roots == nil {
		g.roots, g.lastSweep = map[string]*rootCursor{}, now
	}
	c := g.roots[rs.name]
	switch {
	case fresh || c == nil:
		c = &rootCursor{heard: now, filling: true}
		g.roots[rs.name] = c
	case c.filling: // a fill under way reads up to what is newest when it runs
		g.mu.Unlock()
		done()
		return
	default:
		c.filling, c.waiting = true, c.waiting[:0]
	}
	from := c.last
	g.mu.Unlock()
	e.wg.Go(func() {
		g.readRoot(c, rs, from, since, local)
		done()
	})
}

// readRoot delivers the root's events after from (or, with from empty, from since on), read from
// history, then the messages that waited meanwhile.
func (g *gaps) readRoot(c *rootCursor, rs *rootSub, from string, since time.Time, local fanout.Local) {
	e := g.e
	start := "(" + from
	if from == "" {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
		if _, ok := e.bound(rs.p, time.Now()); !ok {
			_ = e.syncClock(ctx, rs.p) // without a bound, Redis's clock is taken as this node's
		}
		cancel()
		low, _ := e.bound(rs.p, time.Now())
		ms := (e.local(since) + low) / 1000
		start = strconv.FormatInt(ms, 10) + "-0"
		// A stream that resumed here saw the events up to its Last-Event-ID on another node: when that
		// is newer than the clock's bound, start after it, so none of them comes twice.
		if f := e.interest.floorOf(rs); f != "" {
			if fms, _, _ := parseID(f); int64(fms) >= ms {
				start = "(" + f
			}
		}
	}
	var entries []rueidis.XRangeEntry
	err := e.call(context.Background(), "subscribe catch up", "XRANGE", func(ctx context.Context) (err error) {
		entries, err = e.client.Do(ctx, e.client.B().Xrange().Key(e.historyKey(rs.p, rs.ns, rs.root)).
			Start(start).End("+").Count(int64(e.cfg.HistorySize)*2).Build()).AsXRange()
		return err
	})
	if err != nil {
		e.m.BusGapUnrecovered()
		e.log.Warn("bus: a root's history could not be read after its subscription was made", "namespace", rs.ns, "root", rs.root, "err", err)
	}
	read := make(map[string]struct{}, len(entries))
	for _, en := range entries {
		f := en.FieldValues
		fr := frame(en.ID, f["e"], f["u"], f["d"])
		if o, ok := local.(fanout.Opener); ok && from == "" {
			o.DeliverOpening(f["k"], fr) // a resumed stream read this itself
		} else {
			local.Deliver(f["k"], fr)
		}
		read[en.ID] = struct{}{}
	}
	e.m.BusRecovered(len(entries))
	last := from
	if len(entries) > 0 {
		last = entries[len(entries)-1].ID
	}
	g.drain(c, last, read, local)
}

// forget drops the cursor of a root this node no longer subscribes to.
func (g *gaps) forget(name string) {
	g.mu.Lock()
	delete(g.roots, name)
	g.mu.Unlock()
}
