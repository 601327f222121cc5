package redisengine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Defaults of the bus liveness probe.
const (
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = 2 * time.Second
)

// probeScript publishes a probe on a partition's channel (KEYS[1]). Its shebang declares that it
// may write, so Redis refuses it exactly when it refuses writes (a replica after a failover,
// maxmemory reached, a failed save, too few replicas): a probe sees what a publish would, without
// writing anything.
const probeScript = "#!lua\nredis.call('SPUBLISH', KEYS[1], ARGV[1])\nreturn 1"

// BusState is what the liveness probe last saw of the bus.
type BusState struct {
	Up    bool
	Since time.Time // when it became up or down
	Err   error     // why it is down; nil when up
	// Failed is how many partitions failed the last probe round (0 when up).
	Failed int
}

// liveness is the bus liveness probe. Sharded pub/sub can stop delivering without closing anything:
// a connection wedged on the path, a subscription a failover left behind, a server that no longer
// takes writes (centrifugal/centrifugo#1189). So every interval the node publishes a nonce on each
// partition's channel, which covers each pub/sub connection it depends on, and expects each back on
// its own subscription within the timeout, and back on the partition's dedicated connection too when
// it has one (subconn.go: the roots' channels ride on it). A partition whose probe does not come back
// marks the bus down, is counted, and has its subscription renewed (a catch-up then fills what it
// missed); a dedicated connection that missed it is closed, so its roots are subscribed again on a
// new one and catch up from history. The bus is up again after a round in which every probe came
// back. A subscription that rueidis reports lost marks the bus down at once.
type liveness struct {
	e        *Engine
	interval time.Duration
	timeout  time.Duration
	node     string // random: nonces of different nodes never collide on the shared channels

	mu       sync.Mutex
	lostAt   []time.Time // per partition: when its subscription last ended
	state    BusState
	downAt   time.Time // the last time something marked the bus down
	proven   time.Time // the last time Start saw every subscription carry a probe
	seq      uint64
	started  bool
	reported bool // the down state has been logged
}

func (l *liveness) init(e *Engine) {
	l.e = e
	l.interval, l.timeout = e.cfg.ProbeInterval, e.cfg.ProbeTimeout
	l.lostAt = make([]time.Time, e.cfg.Partitions)
	for p := range l.lostAt { // a subscription being made is young: not renewed before a full timeout
		l.lostAt[p] = time.Now()
	}
	l.node = rand.Text()[:12]
	l.state = BusState{Since: time.Now(), Err: errors.New("not started")}
}

// Bus reports the state of the bus as the liveness probe last saw it.
func (e *Engine) Bus() BusState {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	return e.live.state
}

// watch is the hook of an earlier listen that cancelled a quiet Receive to renew it; renew now asks
// Redis instead (see renew), so the cancel func is not kept. It goes once listen stops calling it.
func (l *liveness) watch(int, context.CancelFunc) {}

// lost marks the bus down because partition p's subscription ended with err.
func (l *liveness) lost(p int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		err = errors.New("subscription ended")
	}
	l.lostAt[p] = time.Now()
	l.down(time.Now(), 1, fmt.Errorf("partition %d: subscription lost: %w", p, err))
}

// confirmed marks the bus up after Start saw a probe on every partition, so a node is healthy as
// soon as it serves rather than one probe round later.
func (l *liveness) confirmed(since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proven = time.Now()
	l.up(since)
}

// run probes the bus every interval until ctx ends.
func (l *liveness) run(ctx context.Context) {
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		l.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// round sends one probe on every partition and waits for them until the timeout.
func (l *liveness) round(parent context.Context) {
	e := l.e
	began := time.Now()
	ctx, cancel := context.WithTimeout(parent, l.timeout)
	defer cancel()
	l.mu.Lock()
	l.seq++
	prefix := "live:" + l.node + ":" + strconv.FormatUint(l.seq, 36) + ":"
	l.mu.Unlock()

	n := e.cfg.Partitions
	back := make([]chan struct{}, n)
	deaf := make([]chan struct{}, n) // the probes on the partitions' dedicated connections
	conns := make([]*subConn, n)
	cmds := make(rueidis.Commands, n)
	for p := range n {
		nonce := prefix + strconv.Itoa(p)
		back[p] = make(chan struct{})
		e.probes.Store(nonce, back[p])
		defer e.probes.Delete(nonce)
		if conns[p] = e.interest.probing(p); conns[p] != nil {
			deaf[p] = make(chan struct{})
			e.probes.Store(dedicatedProbe+nonce, deaf[p])
			defer e.probes.Delete(dedicatedProbe + nonce)
		}
		cmds[p] = e.client.B().Eval().Script(probeScript).Numkeys(1).Key(e.channel(p)).Arg("\x00" + nonce).Build()
	}
	results := e.client.DoMulti(ctx, cmds...)
	e.observeCommand("EVAL", time.Since(began))

	var failed, quiet []int
	var firstErr error
	for p, r := range results {
		err := r.Error()
		if err == nil {
			err = l.back(ctx, back[p])
		}
		shared := err != nil // the shared subscription of the partition's channel failed it
		if err == nil && deaf[p] != nil {
			if err = l.back(ctx, deaf[p]); err != nil && parent.Err() == nil {
				err = fmt.Errorf("on its roots' connection: %w", err)
				e.interest.deaf(p, conns[p]) // made again, its roots subscribed again and caught up
			}
		}
		if err == nil {
			continue
		}
		if parent.Err() != nil {
			return // the engine is closing: nothing was learnt
		}
		failed = append(failed, p)
		if _, refused := rueidis.IsRedisErr(err); !refused && shared { // Redis refusing the probe says nothing of the subscription
			quiet = append(quiet, p)
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("partition %d: probe: %w", p, err)
		}
	}
	e.m.ObserveBusProbe(time.Since(began))
	if len(failed) > 0 {
		l.mu.Lock()
		if began.Before(l.proven) { // sent before Start's subscriptions were there: it says nothing
			l.mu.Unlock()
			return
		}
		e.m.BusProbesFailed(len(failed))
		l.down(time.Now(), len(failed), firstErr)
		l.mu.Unlock()
		l.renew(parent, quiet, began.Add(-l.timeout))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if began.After(l.downAt) { // nothing marked it down since this round began
		l.up(began)
	}
}

// back waits for a probe to come back on ch until ctx ends.
func (l *liveness) back(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch: // first on its own: past the deadline, select would pick at random
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("not back within %v", l.timeout)
	}
}

// renew has Redis end the subscriptions of partitions whose probe did not come back (SUNSUBSCRIBE,
// which rueidis handles like a server-side unsubscribe: Receive returns, listen subscribes again and
// catches up on what it missed). Only subscriptions not lost since then are renewed: one renewed
// since may simply not have been confirmed when the probe went out, and each renewal waits out
// listen's back-off. The subscription is ended through Redis rather than by cancelling its Receive:
// cancelling a Receive whose SSUBSCRIBE is still unanswered leaves rueidis's connection delivering to
// a reader that is gone, which stalled every subscription on it for tens of seconds in a cluster
// failover.
func (l *liveness) renew(ctx context.Context, partitions []int, then time.Time) {
	e := l.e
	var cmds rueidis.Commands
	l.mu.Lock()
	for _, p := range partitions {
		if l.lostAt[p].Before(then) {
			cmds = append(cmds, e.client.B().Sunsubscribe().Channel(e.channel(p)).Build())
		}
	}
	l.mu.Unlock()
	if len(cmds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	for _, r := range e.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil && ctx.Err() == nil {
			e.log.Debug("bus probe: renewing a subscription", "err", err)
		}
	}
}

// down records the bus as down. The caller holds l.mu.
func (l *liveness) down(at time.Time, failed int, err error) {
	l.downAt = at
	if l.state.Up || !l.started {
		l.state.Since = at
	}
	l.started = true
	l.state.Up, l.state.Err, l.state.Failed = false, err, failed
	l.e.m.SetRedisUp(false)
	if !l.reported {
		l.reported = true
		l.e.log.Warn("redis bus down: health answers 503 until every partition carries a probe again",
			"failed_partitions", failed, "err", err)
	}
}

// up records the bus as up. The caller holds l.mu.
func (l *liveness) up(at time.Time) {
	if l.state.Up {
		return
	}
	wasDown := l.started
	downFor := time.Since(l.state.Since)
	l.started = true
	l.state = BusState{Up: true, Since: at}
	l.reported = false
	l.e.m.SetRedisUp(true)
	if wasDown {
		l.e.log.Info("redis bus up again", "down_for", downFor.Round(time.Millisecond))
	}
}
