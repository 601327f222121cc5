package redisengine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
)

// DefaultPublishGrace is the default of Config.PublishGrace.
const DefaultPublishGrace = 500 * time.Millisecond

// What the publish script answers for each event.
const (
	publishOK   = "ok"   // applied; then the ID
	publishSeen = "seen" // the idempotency key was seen; then "fingerprint\nID" of the first publish
	publishLate = "late" // Redis ran it after its deadline and refused it: nothing applied
)

// publishScript appends a run of events of one root to its history and publishes each on the root's
// channel, in one step, unless Redis runs it after its deadline (in Redis's clock, TIME); an event whose
// idempotency key was seen is answered, not applied. A run costs one script call, one history read, one
// trim and one expiry however many events it holds: a batch of a root's events costs Redis about a
// third of what the same events cost published one by one (docs/clustering.md).
// KEYS: history stream, the root's channel (same slot), then the idempotency keys of the events that have one.
// ARGV: maxlen, minid, ttl ms, namespace, the publisher's traceparent ("" when it has no trace), the
// deadline in Redis's clock in ms ("0": none), the idempotency window in ms; then six for each event:
// key, name, user ID, data, the index in KEYS of its idempotency key ("0": none) and its fingerprint.
// It answers {TIME seconds, TIME µs, "late"} or {TIME seconds, TIME µs, "ok", then status and value
// of each event}.
//
// The bus message is "ns\nkey\nid\nname\nuserID\ndata", preceded by "\x02prevID\n" (the ID of the
// root's previous event, "" for the first: a node that last heard another ID missed events, see
// gaps.go) and, before that, "\x01traceparent\n" when a traceparent is given (see receive).
var publishScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local deadline = tonumber(ARGV[6])
if deadline > 0 and tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline then
  return {t[1], t[2], 'late'}
end
local out = {t[1], t[2], 'ok'}
local prev = ''
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then prev = top[1][1] end
local head = '\n' .. ARGV[4] .. '\n'
local trace = ''
if ARGV[5] ~= '' then trace = '\1' .. ARGV[5] .. '\n' end
for i = 8, #ARGV, 6 do
  local ik = tonumber(ARGV[i + 4])
  local seen = false
  if ik > 0 then seen = redis.call('GET', KEYS[ik]) end
  if seen then
    out[#out + 1] = 'seen'
    out[#out + 1] = seen
  else
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', ARGV[i], 'e', ARGV[i + 1], 'u', ARGV[i + 2], 'd', ARGV[i + 3])
    redis.call('SPUBLISH', KEYS[2], trace .. '\2' .. prev .. head .. ARGV[i] .. '\n' .. id .. '\n' .. ARGV[i + 1] .. '\n' .. ARGV[i + 2] .. '\n' .. ARGV[i + 3])
    prev = id
    if ik > 0 then
      local answer = id
      if ARGV[i + 2] ~= '' then answer = ARGV[i + 2] end
      redis.call('SET', KEYS[ik], ARGV[i + 5] .. '\n' .. answer, 'PX', ARGV[7])
    end
    out[#out + 1] = 'ok'
    out[#out + 1] = id
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return out
`)

// clockScript answers Redis's TIME from the node that holds KEYS[1]'s slot (a partition's).
var clockScript = rueidis.NewLuaScript(`return redis.call('TIME')`)

// clockFresh is how long a partition's clock bound is trusted without a tighter or newer one: after a
// failover to a server whose clock is behind, the bound is too high for at most this long.
const clockFresh = 10 * time.Second

// clockSlack covers TIME's and this node's truncation to microseconds.
const clockSlack = time.Millisecond

// clock is what this node knows of the clock of the Redis server holding one partition: a lower bound of
// Redis's time minus this node's. Every publish's answer carries Redis's TIME, so a busy partition keeps
// its bound tight without extra round trips.
type clock struct {
	mu  sync.Mutex
	low int64 // µs
	at  int64 // this node's time (µs, see Engine.local) when low was set; 0: never
}

// local is this node's time in µs, moved by its monotonic clock since the engine was made, so a step of
// the wall clock does not move the bounds.
func (e *Engine) local(t time.Time) int64 {
	return e.epoch.UnixMicro() + t.Sub(e.epoch).Microseconds()
}

// observe tightens partition p's bound with Redis's TIME (seconds, µs) answered to a call received at
// recv: Redis read it between sending and recv, so TIME - recv is a lower bound.
func (e *Engine) observe(p int, sec, usec string, recv time.Time) {
	s, err1 := strconv.ParseInt(sec, 10, 64)
	u, err2 := strconv.ParseInt(usec, 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	now := e.local(recv)
	b := s*1_000_000 + u - now - clockSlack.Microseconds()
	c := &e.clocks[p]
	c.mu.Lock()
	if c.at == 0 || b > c.low || now-c.at > clockFresh.Microseconds() {
		c.low, c.at = b, now
	}
	c.mu.Unlock()
}

// bound returns partition p's bound, and false when there is none fresh enough to use.
func (e *Engine) bound(p int, now time.Time) (int64, bool) {
	c := &e.clocks[p]
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.low, c.at != 0 && e.local(now)-c.at <= clockFresh.Microseconds()
}

// syncClock reads Redis's TIME on partition p's server to bound its clock. Nothing is written, so its
// failure means a publish that needed it was not applied.
func (e *Engine) syncClock(ctx context.Context, p int) error {
	return e.call(ctx, "clock", "TIME", func(ctx context.Context) error {
		reply, err := clockScript.Exec(ctx, e.client, []string{e.channel(p)}, nil).ToArray()
		recv := time.Now()
		if err != nil {
			return err
		}
		if len(reply) != 2 {
			return fmt.Errorf("TIME answered %d values", len(reply))
		}
		sec, err1 := reply[0].ToString()
		usec, err2 := reply[1].ToString()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		e.observe(p, sec, usec, recv)
		return nil
	})
}

// Publish runs the publish script under a "redis publish" client span, whose traceparent the bus message
// carries to every node. An answer of 503 (fanout.ErrUnavailable) means the event was not applied, and
// will not be: the script carries a deadline in Redis's clock (this node's send time plus Timeout, moved
// by the partition's clock bound) past which Redis refuses it, and this node waits PublishGrace past
// that deadline before it gives up, by which time Redis's clock is past the deadline whatever the two
// clocks say. The exception, marked with fanout.ErrOutcomeUnknown, is a connection lost while the
// publish was in flight: Redis may have run it before. A publisher's retry with the same idempotency key
// is safe in every case (see fanout.Event.IdempotencyKey).
func (n *namespace) Publish(ctx context.Context, key string, ev fanout.Event) (string, error) {
	items := []fanout.BatchItem{{Key: key, Event: ev}}
	parts, err := n.partitions(ctx, items)
	if err != nil {
		return "", err
	}
	ctx, span := n.e.startCall(ctx, "redis publish", "EVALSHA")
	defer span.End()
	r := n.publish(ctx, items, parts)[0]
	switch {
	case errors.Is(r.Err, fanout.ErrReplayed):
		span.SetAttributes(attribute.String("sseedge.event_id", r.ID), attribute.Bool("sseedge.replayed", true))
	case r.Err != nil:
		span.SetStatus(codes.Error, r.Err.Error())
	default:
		span.SetAttributes(attribute.String("sseedge.event_id", r.ID))
	}
	return r.ID, r.Err
}

// partitions answers the partition of each item's root, first reading the clock of any partition
// whose bound is not fresh (a publish's deadline is set in Redis's clock). Nothing is written, so its
// failure means no item was applied.
func (n *namespace) partitions(ctx context.Context, items []fanout.BatchItem) ([]int, error) {
	e := n.e
	parts := make([]int, len(items))
	for i, it := range items {
		parts[i] = e.partition(n.ns, fanout.Root(it.Key))
		if _, ok := e.bound(parts[i], time.Now()); !ok {
			if err := e.syncClock(ctx, parts[i]); err != nil {
				return nil, err
			}
		}
	}
	return parts, nil
}

// run is the items of one root in a publish, in their order: one call of the publish script.
type run struct {
	p     int
	root  string
	items []int // indices in the publish's items
}

// runs groups items by root, in the order of each root's first item.
func runs(items []fanout.BatchItem, parts []int) []run {
	if len(items) == 1 {
		return []run{{p: parts[0], root: fanout.Root(items[0].Key), items: []int{0}}}
	}
	at := make(map[string]int)
	var out []run
	for i, it := range items {
		root := fanout.Root(it.Key)
		j, ok := at[root]
		if !ok {
			j, at[root] = len(out), len(out)
			out = append(out, run{p: parts[i], root: root})
		}
		out[j].items = append(out[j].items, i)
	}
	return out
}

// publish runs the publish script once for each root of items (parts: their partitions), all pipelined
// in one round trip (rueidis sends them in one write per Redis node), and answers each item in order.
// A root's events are applied in their order, so their IDs and bus order are the items'.
func (n *namespace) publish(ctx context.Context, items []fanout.BatchItem, parts []int) []fanout.BatchResult {
	e := n.e
	sent := time.Now()
	deadline := sent.Add(e.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-e.cfg.PublishGrace).Before(deadline) {
		deadline = d.Add(-e.cfg.PublishGrace) // the caller gives up sooner: so must the script
	}
	if !deadline.After(sent) {
		return failed(len(items), fmt.Errorf("redisengine: publish: %w: no time left before the caller's deadline", fanout.ErrUnavailable))
	}
	cctx, cancel := context.WithDeadline(ctx, deadline.Add(e.cfg.PublishGrace))
	defer cancel()

	traceparent := traceparentOf(e, ctx)
	rs := runs(items, parts)
	execs := make([]rueidis.LuaExec, len(rs))
	fingerprints := make([]string, len(items))
	for i, r := range rs {
		low, _ := e.bound(r.p, sent)
		execs[i] = n.exec(r, items, fingerprints, traceparent, (e.local(deadline)+low)/1000) // ms in Redis's clock
	}
	var results []rueidis.RedisResult
	if len(execs) == 1 {
		// ExecMulti loads the script on every node first: a round trip that Exec's EVALSHA saves.
		results = []rueidis.RedisResult{publishScript.Exec(cctx, e.client, execs[0].Keys, execs[0].Args)}
	} else {
		results = publishScript.ExecMulti(cctx, e.client, execs...)
	}
	recv := time.Now()
	e.observeCommand("EVALSHA", recv.Sub(sent))
	out := make([]fanout.BatchResult, len(items))
	for i, r := range rs {
		n.answer(ctx, r, items, fingerprints, results[i], sent, recv, out)
	}
	return out
}

// traceparentOf is the W3C traceparent of ctx's span when it is sampled ("" otherwise: an unsampled
// trace has nothing to join).
func traceparentOf(e *Engine, ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	e.prop.Inject(ctx, c)
	return c["traceparent"]
}

// exec is the publish script's call for run r of items, and sets the fingerprint of each of its items
// that has an idempotency key.
func (n *namespace) exec(r run, items []fanout.BatchItem, fingerprints []string, traceparent string, redisDeadline int64) rueidis.LuaExec {
	e := n.e
	keys := []string{e.historyKey(r.p, n.ns, r.root), e.rootChannel(r.p, n.ns, r.root)}
	minID := strconv.FormatInt(time.Now().Add(-e.cfg.HistoryTTL).UnixMilli(), 10)
	ttl := strconv.FormatInt(e.cfg.HistoryTTL.Milliseconds(), 10)
	args := make([]string, 0, 7+6*len(r.items))
	args = append(args, strconv.Itoa(e.cfg.HistorySize), minID, ttl, n.ns, traceparent, strconv.FormatInt(redisDeadline, 10), ttl)
	for _, i := range r.items {
		it := items[i]
		idem := "0"
		if it.Event.IdempotencyKey != "" {
			keys = append(keys, e.idempotencyKey(r.p, n.ns, r.root, it.Event.IdempotencyKey))
			idem = strconv.Itoa(len(keys))
			fingerprints[i] = fanout.EventFingerprint(it.Key, it.Event)
		}
		args = append(args, it.Key, it.Event.Name, it.Event.ID, string(it.Event.Data), idem, fingerprints[i])
	}
	return rueidis.LuaExec{Keys: keys, Args: args}
}

// answer reads the publish script's reply res for run r into out: each item's ID, or the error that
// says why not (fanout.ErrReplayed, with the first publish's ID, for a retry of an idempotent publish).
func (n *namespace) answer(ctx context.Context, r run, items []fanout.BatchItem, fingerprints []string, res rueidis.RedisResult, sent, recv time.Time, out []fanout.BatchResult) {
	e := n.e
	failAll := func(err error) {
		for _, i := range r.items {
			out[i].Err = err
		}
	}
	reply, err := res.ToArray()
	if err != nil {
		failAll(e.publishFailed(ctx, err, len(r.items)))
		return
	}
	field := func(k int) string {
		if k >= len(reply) {
			return ""
		}
		s, _ := reply[k].ToString()
		return s
	}
	e.observe(r.p, field(0), field(1), recv)
	switch status := field(2); status {
	case publishOK:
	case publishLate:
		e.m.PublishExpired(len(r.items))
		e.log.Warn("redis ran a publish after its deadline and refused it; answered 503, not applied",
			"namespace", n.ns, "root", r.root, "events", len(r.items), "waited", recv.Sub(sent))
		failAll(fmt.Errorf("redisengine: publish: %w: Redis ran it after its deadline (%v), not applied", fanout.ErrUnavailable, e.cfg.Timeout))
		return
	default:
		failAll(unexpectedAnswer(status))
		return
	}
	for k, i := range r.items {
		ev := items[i].Event
		switch status, value := field(3+2*k), field(4+2*k); status {
		case publishOK:
			out[i].ID = value
			if ev.ID != "" {
				out[i].ID = ev.ID
			}
		case publishSeen:
			fp, id, _ := strings.Cut(value, "\n")
			if fp != fingerprints[i] {
				out[i].Err = fmt.Errorf("redisengine: publish: %w: %q", fanout.ErrIdempotencyConflict, ev.IdempotencyKey)
			} else {
				out[i].ID, out[i].Err = id, fmt.Errorf("redisengine: publish: %w", fanout.ErrReplayed)
			}
		default:
			out[i].Err = unexpectedAnswer(status)
		}
	}
}

// unexpectedAnswer is the error of a publish script reply this node cannot read: the event may have
// been applied.
func unexpectedAnswer(status string) error {
	return fmt.Errorf("redisengine: publish: %w: %w: unexpected answer %q", fanout.ErrUnavailable, fanout.ErrOutcomeUnknown, status)
}

// failed answers n items with err.
func failed(n int, err error) []fanout.BatchResult {
	out := make([]fanout.BatchResult, n)
	for i := range out {
		out[i].Err = err
	}
	return out
}

// publishFailed wraps the error of a publish of events events as fanout.ErrUnavailable, and also as
// fanout.ErrOutcomeUnknown unless the publish cannot have been applied: it ran out of time (the
// script's deadline has passed in Redis's clock too), Redis refused it with an error, or no connection
// was made.
func (e *Engine) publishFailed(caller context.Context, err error, events int) error {
	_, refused := rueidis.IsRedisErr(err)
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	timedOut := errors.Is(err, context.DeadlineExceeded) && caller.Err() == nil ||
		errors.Is(caller.Err(), context.DeadlineExceeded)
	if refused || dial || timedOut {
		return fmt.Errorf("redisengine: publish: %w (not applied): %w", fanout.ErrUnavailable, err)
	}
	e.m.PublishOutcomeUnknown(events)
	e.log.Warn("a publish's connection to Redis was lost while it was in flight; it may have been applied", "events", events, "err", err)
	return fmt.Errorf("redisengine: publish: %w: %w: %w", fanout.ErrUnavailable, fanout.ErrOutcomeUnknown, err)
}

// idempotencyKey is the Redis key that remembers an idempotency key of a root, in its partition's slot.
func (e *Engine) idempotencyKey(p int, ns, root, key string) string {
	return e.cfg.Prefix + ":{p" + strconv.Itoa(p) + "}:i:" + ns + ":" + root + "\n" + key
}
