package redisengine

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Back-off of a partition whose connection could not be made or ended.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// partSubs is one partition's side of the bus: the roots this node subscribes to in it, on one
// dedicated pub/sub connection (all its channels are in the partition's slot, so one connection to the
// slot's node carries them). The connection is made at Start and kept until Close, made again
// whenever it ends: a partition's first root then costs one SSUBSCRIBE round trip, as any other, not a
// dial first (ends and token refreshes are not in history: one sent while its root's subscription is
// being made is lost, so that window stays as short as it was). Its fields are guarded by interest.mu.
type partSubs struct {
	in    *interest
	p     int
	roots map[string]*rootSub // by channel: from the first watch until the subscription is gone
	todo  []*rootSub          // to SSUBSCRIBE (those already sent, or gone, are skipped)
	bye   []*rootSub          // to SUNSUBSCRIBE (those watched again meanwhile are skipped)
	conn  *subConn            // nil while there is none
	wait  time.Duration       // the back-off after the connection ended
	retry time.Time           // no connection before then
}

// subConn is one dedicated connection of a partition. The reader of rueidis calls its hooks; closing
// it, by us or by the network, ends the hooks' channel, which watch waits for.
type subConn struct {
	mu      sync.Mutex
	dc      rueidis.DedicatedClient
	closed  bool
	began   time.Time
	probing atomic.Bool // the partition's channel is confirmed on it: the liveness probe covers it
}

// set gives c its client, or closes dc and reports false when c was closed while it was being made.
func (c *subConn) set(dc rueidis.DedicatedClient) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		dc.Close()
		return false
	}
	c.dc = dc
	c.mu.Unlock()
	return true
}

// close closes the connection (once): its hooks' channel ends and watch takes it from there.
func (c *subConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	dc := c.dc
	c.mu.Unlock()
	if dc != nil {
		dc.Close()
	}
}

// add queues rs for SSUBSCRIBE: a new root, or one watched again while it was leaving.
func (ps *partSubs) add(rs *rootSub) {
	ps.roots[rs.channel] = rs
	rs.sent = false
	ps.todo = append(ps.todo, rs)
}

// leave queues rs, idle for the linger, for SUNSUBSCRIBE.
func (ps *partSubs) leave(rs *rootSub) {
	rs.leaving = true
	ps.bye = append(ps.bye, rs)
}

// drop forgets rs, whose subscription is gone. The caller holds in.mu.
func (ps *partSubs) drop(rs *rootSub) {
	delete(ps.in.roots, rs.name)
	delete(ps.roots, rs.channel)
	ps.in.e.gaps.forget(rs.name)
	// The SUNSUBSCRIBE's confirmation comes after the turn of the loop that sent it set the gauge.
	ps.in.e.m.BusSubscriptions(len(ps.in.roots))
}

// batch is what one turn of the loop sends on one partition's connection.
type batch struct {
	ps     *partSubs
	conn   *subConn
	dial   bool // conn is new: make it, with the partition's channel for the probe
	subs   []string
	unsubs []string
}

// take collects the partition's batch for this turn, or reports false when it has none; next is
// lowered to the end of its back-off. The caller holds in.mu.
func (ps *partSubs) take(now time.Time, next *time.Duration) (batch, bool) {
	b := batch{ps: ps, conn: ps.conn}
	for _, rs := range ps.bye {
		switch {
		case !rs.leaving || rs.watched: // watched again before it went
		case ps.conn == nil || !rs.sent: // subscribed nowhere
			ps.drop(rs)
		default:
			b.unsubs = append(b.unsubs, rs.channel)
		}
	}
	ps.bye = ps.bye[:0]
	if ps.conn == nil {
		if d := ps.retry.Sub(now); d > 0 {
			*next = min(*next, d)
			return b, len(b.unsubs) > 0
		}
		ps.conn = &subConn{began: now}
		b.conn, b.dial = ps.conn, true
	}
	for _, rs := range ps.todo {
		if rs.sent || rs.leaving || ps.roots[rs.channel] != rs {
			continue
		}
		rs.sent = true
		b.subs = append(b.subs, rs.channel)
	}
	ps.todo = ps.todo[:0]
	return b, b.dial || len(b.subs) > 0 || len(b.unsubs) > 0
}

// sendAll sends every partition's batch, the partitions at once (a Redis that does not answer costs
// the loop one timeout, not one a partition), and returns how long until a back-off ends.
func (in *interest) sendAll(ctx context.Context, now time.Time) time.Duration {
	next := time.Hour
	var batches []batch
	in.mu.Lock()
	for _, ps := range in.parts {
		if b, ok := ps.take(now, &next); ok {
			batches = append(batches, b)
		}
	}
	in.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Go(func() { in.send(ctx, b) })
	}
	wg.Wait()
	return next
}

// send makes the batch's connection if it is new and sends its SSUBSCRIBE and SUNSUBSCRIBE, one
// command each however many channels. A failure closes the connection: watch then has every root of
// the partition subscribed again on a new one.
func (in *interest) send(ctx context.Context, b batch) {
	e := in.e
	c := b.conn
	if b.dial {
		dc, release := e.pubsub.Dedicate()
		_ = release // Close releases it too
		if !c.set(dc) {
			return
		}
		hooks := dc.SetPubSubHooks(rueidis.PubSubHooks{
			OnMessage:      func(m rueidis.PubSubMessage) { in.message(b.ps, m) },
			OnSubscription: func(s rueidis.PubSubSubscription) { in.subscription(b.ps, c, s) },
		})
		e.wg.Go(func() { in.watch(ctx, b.ps, c, hooks) })
		b.subs = append(b.subs, e.channel(b.ps.p))
	}
	c.mu.Lock()
	dc := c.dc
	c.mu.Unlock()
	if dc == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	var cmds rueidis.Commands
	if len(b.subs) > 0 {
		cmds = append(cmds, dc.B().Ssubscribe().Channel(b.subs...).Build())
	}
	if len(b.unsubs) > 0 {
		cmds = append(cmds, dc.B().Sunsubscribe().Channel(b.unsubs...).Build())
	}
	if len(cmds) == 0 {
		return
	}
	began := time.Now()
	in.mu.Lock()
	for _, ch := range b.unsubs {
		if rs := b.ps.roots[ch]; rs != nil {
			rs.pending++
		}
	}
	in.mu.Unlock()
	e.m.BusCommands(min(len(b.subs), 1), min(len(b.unsubs), 1))
	for _, r := range dc.DoMulti(cctx, cmds...) {
		if err := r.Error(); err != nil && ctx.Err() == nil {
			e.log.Warn("bus: a partition's subscriptions failed; renewing its connection", "partition", b.ps.p, "err", err)
			c.close()
			break
		}
	}
	if len(b.subs) > 0 {
		e.observeCommand("SSUBSCRIBE", time.Since(began))
	} else {
		e.observeCommand("SUNSUBSCRIBE", time.Since(began))
	}
}

// subscription is Redis confirming or ending one channel's subscription on c, on its reader.
func (in *interest) subscription(ps *partSubs, c *subConn, s rueidis.PubSubSubscription) {
	in.mu.Lock()
	if ps.conn != c {
		in.mu.Unlock()
		return
	}
	if s.Channel == in.e.channel(ps.p) {
		in.mu.Unlock()
		c.probing.Store(s.Kind == "ssubscribe")
		return
	}
	rs := ps.roots[s.Channel]
	switch {
	case rs == nil:
	case s.Kind == "ssubscribe" && rs.sent:
		in.mu.Unlock()
		in.confirmed(rs)
		return
	case s.Kind != "sunsubscribe":
	case rs.pending > 0: // ours
		rs.pending--
		if rs.pending == 0 && rs.leaving && !rs.watched {
			ps.drop(rs)
		}
	default: // Redis's own: the slot moved, or its node stopped serving it
		in.e.log.Warn("bus: Redis ended a root's subscription; renewing", "channel", s.Channel)
		ps.add(rs)
		defer in.poke()
	}
	in.mu.Unlock()
}

// message hands a message of c's partition to the engine: a root's event, or a probe that
// came back on this connection (the shared subscription of the partition's channel hears it too).
func (in *interest) message(ps *partSubs, m rueidis.PubSubMessage) {
	if m.Channel != in.e.channel(ps.p) {
		in.e.receive(m.Message)
		return
	}
	if nonce, ok := strings.CutPrefix(m.Message, "\x00"); ok {
		in.e.probed(dedicatedProbe + nonce)
	}
}

// dedicatedProbe prefixes the nonce of a probe as it comes back on a partition's dedicated connection.
const dedicatedProbe = "d:"

// watch waits for c to end and, unless the engine is closing, has a new connection made after a
// back-off, with every root of the partition subscribed again on it: a connection ends when
// Redis restarts, fails over, moves the slot (a MOVED, which also refreshes rueidis's slot map), or
// when the probe found it deaf.
func (in *interest) watch(ctx context.Context, ps *partSubs, c *subConn, hooks <-chan error) {
	err := <-hooks
	for range hooks {
	}
	c.close()
	now := time.Now()
	in.mu.Lock()
	if ps.conn != c {
		in.mu.Unlock()
		return
	}
	ps.conn = nil
	if now.Sub(c.began) > 10*time.Second {
		ps.wait = 0
	}
	ps.wait = min(max(2*ps.wait, minBackoff), maxBackoff)
	ps.retry = now.Add(ps.wait)
	n := 0
	for _, rs := range ps.roots {
		rs.pending = 0
		if rs.leaving && !rs.watched {
			ps.drop(rs)
			continue
		}
		ps.add(rs)
		n++
	}
	in.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	level := slog.LevelDebug // a partition with no root here loses nothing
	if n > 0 {
		level = slog.LevelWarn
	}
	in.e.log.Log(ctx, level, "bus: a partition's pub/sub connection ended; making it again",
		"partition", ps.p, "roots", n, "retry_in", ps.wait, "err", err)
	in.poke()
}

// deaf has the connection of partition p closed (and so made again) when it was probed (conn) and
// the probe did not come back on it.
func (in *interest) deaf(p int, c *subConn) {
	in.mu.Lock()
	current := in.parts[p].conn == c
	in.mu.Unlock()
	if current {
		c.close()
	}
}

// probing returns the connection of partition p when the liveness probe covers it, else nil.
func (in *interest) probing(p int) *subConn {
	in.mu.Lock()
	defer in.mu.Unlock()
	if c := in.parts[p].conn; c != nil && c.probing.Load() {
		return c
	}
	return nil
}

// closeAll closes every partition's connection, as the engine closes.
func (in *interest) closeAll() {
	in.mu.Lock()
	var conns []*subConn
	for _, ps := range in.parts {
		if ps.conn != nil {
			conns = append(conns, ps.conn)
			ps.conn = nil
		}
	}
	in.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}
