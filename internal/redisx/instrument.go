package redisx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/internal/stateerr"
)

// ErrUnavailable is wrapped by Classify's errors when Redis is unreachable, too slow or not serving. It
// is stateerr.ErrUnavailable, so fanout.ErrUnavailable and registry.ErrUnavailable match it too.
var ErrUnavailable = stateerr.ErrUnavailable

// TracerName is the instrumentation scope of the spans an Instrumentation without a Tracer makes.
const TracerName = "sseedge/redisx"

// DefaultTimeout bounds one call of an Instrumentation without a Timeout.
const DefaultTimeout = time.Second

// Observer records one Redis command's round trip. *metrics.Metrics is one: it feeds
// sseedge_redis_command_duration_seconds. A nil *metrics.Metrics records nothing.
type Observer interface {
	ObserveRedisCommand(command string, d time.Duration)
}

// Instrumentation is the node's one way to time, trace, bound and classify a Redis call: the engine,
// the registry, the directory and the MCP sessions all go through it, so every Redis call has a client
// span named "redis <op>", an observation in the command-duration metric, a deadline and, when it
// fails, an error that wraps ErrUnavailable unless retrying cannot help. It is a small value: build it
// where it is needed (the zero value uses otel's global tracer, records no metric and bounds calls by
// DefaultTimeout).
type Instrumentation struct {
	Tracer   trace.Tracer  // makes the spans; nil: otel's global provider, scope TracerName
	Observer Observer      // records each command's round trip; nil: none
	Timeout  time.Duration // bound of one call; <= 0: DefaultTimeout
}

// Start starts the client span of one call, "redis <op>" with its command as db.operation, for a caller
// that bounds and times the call itself (a publish, whose deadline is part of its answer). End the span.
func (in Instrumentation) Start(ctx context.Context, op, command string) (context.Context, trace.Span) {
	tracer := in.Tracer
	if tracer == nil {
		tracer = otel.Tracer(TracerName)
	}
	return tracer.Start(ctx, "redis "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			// The pre-1.26 semantic-convention names, which most trace stores still key on, and the
			// current ones.
			attribute.String("db.system", "redis"),
			attribute.String("db.operation", command),
			attribute.String("db.system.name", "redis"),
			attribute.String("db.operation.name", command),
		))
}

// Observe records that command took d, for a caller that times the call itself.
func (in Instrumentation) Observe(command string, d time.Duration) {
	if in.Observer != nil {
		in.Observer.ObserveRedisCommand(command, d)
	}
}

// Bound gives ctx the call's deadline, Timeout from now, unless ctx's own comes sooner: then ctx is
// returned as it is, with no timer made.
func (in Instrumentation) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// Call runs do, which sends one Redis command (or one pipeline) named command, under the span
// "redis <op>", the call's deadline (Bound) and the duration metric. A nil reply is not a failure:
// Call returns nil. Any other error is set on the span and returned through Classify: the caller's own
// cancellation as it is, else wrapping ErrUnavailable unless Redis refused for good.
func (in Instrumentation) Call(ctx context.Context, op, command string, do func(ctx context.Context) error) error {
	cctx, span := in.Start(ctx, op, command)
	defer span.End()
	cctx, cancel := in.Bound(cctx)
	defer cancel()
	began := time.Now()
	err := do(cctx)
	in.Observe(command, time.Since(began))
	if err == nil || rueidis.IsRedisNil(err) {
		return nil
	}
	err = Classify(ctx, err)
	span.SetStatus(codes.Error, err.Error())
	return err
}

// Client wraps c so that every command sent through Do, DoCache, DoMulti and DoMultiCache (Lua
// scripts included, which go through Do) gets the span "redis <COMMAND>" ("redis PIPELINE" for
// several), an observation in the duration metric and, when its context has no deadline, Timeout. It
// shares c's connections; Receive and the rest pass through. The errors in its results are Redis's
// own (a RedisResult cannot carry another): stores classify them with Classify.
func (in Instrumentation) Client(c rueidis.Client) rueidis.Client {
	return &instrumented{Client: c, in: in}
}

type instrumented struct {
	rueidis.Client
	in Instrumentation
}

func (c *instrumented) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	ctx, done := c.observe(ctx, commandName(cmd.Commands()))
	res := c.Client.Do(ctx, cmd)
	done(res.Error())
	return res
}

func (c *instrumented) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	ctx, done := c.observe(ctx, commandName(cmd.Commands()))
	res := c.Client.DoCache(ctx, cmd, ttl)
	done(res.Error())
	return res
}

func (c *instrumented) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	ctx, done := c.observe(ctx, "PIPELINE")
	res := c.Client.DoMulti(ctx, multi...)
	done(firstErr(res))
	return res
}

func (c *instrumented) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	ctx, done := c.observe(ctx, "PIPELINE")
	res := c.Client.DoMultiCache(ctx, multi...)
	done(firstErr(res))
	return res
}

// observe starts the span of one command, bounds it when ctx has no deadline, and returns the function
// that ends both and records the command's time.
func (c *instrumented) observe(ctx context.Context, command string) (context.Context, func(error)) {
	ctx, span := c.in.Start(ctx, command, command)
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = c.in.Bound(ctx)
	}
	began := time.Now()
	return ctx, func(err error) {
		c.in.Observe(command, time.Since(began))
		cancel()
		if err != nil && !rueidis.IsRedisNil(err) {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// commandName is a command's name, copied: rueidis recycles a command's buffers once it is sent.
func commandName(args []string) string {
	if len(args) == 0 {
		return "UNKNOWN"
	}
	return strings.ToUpper(strings.Clone(args[0]))
}

func firstErr(res []rueidis.RedisResult) error {
	for _, r := range res {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
	}
	return nil
}

// Classify is the node's one reading of a Redis error err met on behalf of ctx:
//   - nil and a nil reply (rueidis.IsRedisNil) come back as they are: the caller decides what absence means;
//   - when ctx has ended, its own error: the caller gave up, Redis is not to blame;
//   - a Redis reply that retrying will not fix (Permanent: WRONGTYPE, NOPERM, a wrong password, a
//     syntax error) as it is: the request or the deployment is wrong;
//   - anything else wrapping ErrUnavailable: the server is down, hung, unreachable, or not serving
//     right now (LOADING, CLUSTERDOWN, TRYAGAIN, MASTERDOWN, BUSY, READONLY during a failover).
//
// ctx may be nil (no caller to blame, as when connecting).
func Classify(ctx context.Context, err error) error {
	switch {
	case err == nil || rueidis.IsRedisNil(err) || errors.Is(err, ErrUnavailable):
		return err
	case ctx != nil && ctx.Err() != nil:
		return ctx.Err()
	case Permanent(err):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Permanent reports whether err is (or wraps) a Redis error reply that says something other than "not
// serving right now", so that retrying will not help.
func Permanent(err error) bool {
	var re *rueidis.RedisError
	if !errors.As(err, &re) || re.IsNil() { // wrapped by NewClient too
		return false
	}
	msg := re.Error()
	_, redirect := re.IsRedirect()
	return !(re.IsLoading() || re.IsClusterDown() || re.IsTryAgain() || redirect ||
		strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "BUSY ") || strings.HasPrefix(msg, "READONLY"))
}
