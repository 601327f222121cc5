package registry

import (
	"context"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/metrics"
)

// Instrument wraps client so that every command it sends (Lua scripts included, which go through Do)
// gets a client span and an observation in sseedge_redis_command_duration_seconds. It shares client's
// connections; give it to the registry store, the directory and the MCP session store.
func Instrument(client rueidis.Client, m *metrics.Metrics) rueidis.Client {
	return &instrumented{Client: client, m: m, tracer: otel.Tracer("sseedge/registry")}
}

type instrumented struct {
	rueidis.Client
	m      *metrics.Metrics
	tracer trace.Tracer
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

// observe starts a span for one command and returns the function that ends it and records its time.
func (c *instrumented) observe(ctx context.Context, name string) (context.Context, func(error)) {
	ctx, span := c.tracer.Start(ctx, "redis "+name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "redis"), attribute.String("db.operation", name)))
	start := time.Now()
	return ctx, func(err error) {
		c.m.ObserveRedisCommand(name, time.Since(start))
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
