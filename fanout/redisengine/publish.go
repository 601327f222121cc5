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

// What the publish script answers first.
const (
	publishOK   = "ok"   // applied; then the ID
	publishSeen = "seen" // the idempotency key was seen; then "fingerprint\nID" of the first publish
	publishLate = "late" // Redis ran it after its deadline and refused it: not applied
)

// publishScript appends to a root's history and publishes on its partition's channel in one step,
// unless Redis runs it after its deadline (in Redis's clock, TIME) or its idempotency key was seen.
// KEYS: history stream, the root's channel (same slot), and the idempotency key's own key when there is one.
// ARGV: maxlen, minid, ttl ms, namespace, key, the event's name, user ID and data, the publisher's
// traceparent ("" when it has no trace), the deadline in Redis's clock in ms ("0": none), the event's
// fingerprint and the idempotency window in ms. It answers {status, value, TIME seconds, TIME µs}.
//
// The bus message is "ns\nkey\nid\nname\nuserID\ndata", preceded by "\x02prevID\n" (the ID of the
// root's previous event, "" for the first: a node that last heard another ID missed events, see
// gaps.go) and, before that, "\x01traceparent\n" when a traceparent is given (see receive).
var publishScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
if KEYS[3] then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {'seen', seen, t[1], t[2]} end
end
local deadline = tonumber(ARGV[10])
if deadline > 0 and tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline then
  return {'late', '', t[1], t[2]}
end
local prev = ''
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then prev = top[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', ARGV[5], 'e', ARGV[6], 'u', ARGV[7], 'd', ARGV[8])
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local msg = '\2' .. prev .. '\n' .. ARGV[4] .. '\n' .. ARGV[5] .. '\n' .. id .. '\n' .. ARGV[6] .. '\n' .. ARGV[7] .. '\n' .. ARGV[8]
if ARGV[9] ~= nil and ARGV[9] ~= '' then
  msg = '\1' .. ARGV[9] .. '\n' .. msg
end
redis.call('SPUBLISH', KEYS[2], msg)
if KEYS[3] then
  local answer = id
  if ARGV[7] ~= '' then answer = ARGV[7] end
  redis.call('SET', KEYS[3], ARGV[11] .. '\n' .. answer, 'PX', ARGV[12])
end
return {'ok', id, t[1], t[2]}
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
	e := n.e
	root := fanout.Root(key)
	p := e.partition(n.ns, root)
	if _, ok := e.bound(p, time.Now()); !ok {
		if err := e.syncClock(ctx, p); err != nil {
			return "", err
		}
	}
	ctx, span := e.startCall(ctx, "redis publish", "EVALSHA")
	defer span.End()
	fail := func(err error) (string, error) {
		span.SetStatus(codes.Error, err.Error())
		return "", err
	}

	sent := time.Now()
	low, _ := e.bound(p, sent)
	deadline := sent.Add(e.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-e.cfg.PublishGrace).Before(deadline) {
		deadline = d.Add(-e.cfg.PublishGrace) // the caller gives up sooner: so must the script
	}
	if !deadline.After(sent) {
		return fail(fmt.Errorf("redisengine: publish: %w: no time left before the caller's deadline", fanout.ErrUnavailable))
	}
	redisDeadline := (e.local(deadline) + low) / 1000 // ms in Redis's clock
	cctx, cancel := context.WithDeadline(ctx, deadline.Add(e.cfg.PublishGrace))
	defer cancel()

	ex, fingerprint := n.exec(p, key, ev, traceparentOf(e, ctx), redisDeadline)
	res := publishScript.Exec(cctx, e.client, ex.Keys, ex.Args)
	recv := time.Now()
	e.observeCommand("EVALSHA", recv.Sub(sent))
	id, err := n.answer(ctx, p, key, ev, fingerprint, res, sent, recv)
	switch {
	case errors.Is(err, fanout.ErrReplayed):
		span.SetAttributes(attribute.String("sseedge.event_id", id), attribute.Bool("sseedge.replayed", true))
		return id, err
	case err != nil:
		return fail(err)
	}
	span.SetAttributes(attribute.String("sseedge.event_id", id))
	return id, nil
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

// exec is the publish script's call for one event of partition p, and the event's fingerprint when it
// has an idempotency key.
func (n *namespace) exec(p int, key string, ev fanout.Event, traceparent string, redisDeadline int64) (rueidis.LuaExec, string) {
	e := n.e
	root := fanout.Root(key)
	keys := []string{e.historyKey(p, n.ns, root), e.rootChannel(p, n.ns, root)}
	var fingerprint string
	if ev.IdempotencyKey != "" {
		keys = append(keys, e.idempotencyKey(p, n.ns, root, ev.IdempotencyKey))
		fingerprint = fanout.EventFingerprint(key, ev)
	}
	minID := strconv.FormatInt(time.Now().Add(-e.cfg.HistoryTTL).UnixMilli(), 10)
	ttl := strconv.FormatInt(e.cfg.HistoryTTL.Milliseconds(), 10)
	return rueidis.LuaExec{Keys: keys, Args: []string{strconv.Itoa(e.cfg.HistorySize), minID, ttl, n.ns, key, ev.Name, ev.ID,
		string(ev.Data), traceparent, strconv.FormatInt(redisDeadline, 10), fingerprint, ttl}}, fingerprint
}

// answer reads the publish script's reply for one event: its ID, or the error that says why not
// (fanout.ErrReplayed, with the first publish's ID, for a retry of an idempotent publish).
func (n *namespace) answer(ctx context.Context, p int, key string, ev fanout.Event, fingerprint string, res rueidis.RedisResult, sent, recv time.Time) (string, error) {
	e := n.e
	reply, err := res.ToArray()
	if err != nil {
		return "", e.publishFailed(ctx, err)
	}
	var fields [4]string
	for i := range fields {
		if i < len(reply) {
			fields[i], _ = reply[i].ToString()
		}
	}
	e.observe(p, fields[2], fields[3], recv)
	switch fields[0] {
	case publishOK:
		if ev.ID != "" {
			return ev.ID, nil
		}
		return fields[1], nil
	case publishSeen:
		fp, id, _ := strings.Cut(fields[1], "\n")
		if fp != fingerprint {
			return "", fmt.Errorf("redisengine: publish: %w: %q", fanout.ErrIdempotencyConflict, ev.IdempotencyKey)
		}
		return id, fmt.Errorf("redisengine: publish: %w", fanout.ErrReplayed)
	case publishLate:
		e.m.PublishExpired()
		e.log.Warn("redis ran a publish after its deadline and refused it; answered 503, not applied",
			"namespace", n.ns, "key", key, "waited", recv.Sub(sent))
		return "", fmt.Errorf("redisengine: publish: %w: Redis ran it after its deadline (%v), not applied", fanout.ErrUnavailable, e.cfg.Timeout)
	}
	return "", fmt.Errorf("redisengine: publish: %w: %w: unexpected answer %q", fanout.ErrUnavailable, fanout.ErrOutcomeUnknown, fields[0])
}

// publishFailed wraps a publish's error as fanout.ErrUnavailable, and also as fanout.ErrOutcomeUnknown
// unless the publish cannot have been applied: it ran out of time (the script's deadline has passed in
// Redis's clock too), Redis refused it with an error, or no connection was made.
func (e *Engine) publishFailed(caller context.Context, err error) error {
	_, refused := rueidis.IsRedisErr(err)
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	timedOut := errors.Is(err, context.DeadlineExceeded) && caller.Err() == nil ||
		errors.Is(caller.Err(), context.DeadlineExceeded)
	if refused || dial || timedOut {
		return fmt.Errorf("redisengine: publish: %w (not applied): %w", fanout.ErrUnavailable, err)
	}
	e.m.PublishOutcomeUnknown()
	e.log.Warn("a publish's connection to Redis was lost while it was in flight; it may have been applied", "err", err)
	return fmt.Errorf("redisengine: publish: %w: %w: %w", fanout.ErrUnavailable, fanout.ErrOutcomeUnknown, err)
}

// idempotencyKey is the Redis key that remembers an idempotency key of a root, in its partition's slot.
func (e *Engine) idempotencyKey(p int, ns, root, key string) string {
	return e.cfg.Prefix + ":{p" + strconv.Itoa(p) + "}:i:" + ns + ":" + root + "\n" + key
}
