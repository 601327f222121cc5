package invoker

import (
	"log/slog"
	"net"
	"time"

	"github.com/sseedge/sseedge/metrics"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Config.
const (
	DefaultMaxResponseBytes    = 4 << 20
	DefaultMaxConnsPerHost     = 1024
	DefaultMaxIdleConnDuration = 10 * time.Second
	DefaultHealthTimeout       = 2 * time.Second
	DefaultHealthConcurrency   = 8
	DefaultUserAgent           = "sseedge-invoker"
)

// Config configures an Invoker. The zero value is usable: every zero field takes its default.
type Config struct {
	// Metrics records invocations and breaker states; nil records nothing.
	Metrics *metrics.Metrics
	// MaxResponseBytes bounds a function's response body; larger ones fail with
	// CodeResponseTooLarge. Default 4 MiB.
	MaxResponseBytes int
	// DialTimeout opens connections to functions and is given each attempt's remaining time.
	// It takes precedence over Dial. Plug a network guard in here (or in Dial).
	DialTimeout func(addr string, timeout time.Duration) (net.Conn, error)
	// Dial opens connections to functions when DialTimeout is nil. fasthttp cannot pass it the
	// attempt's deadline, so it must bound its own dialing time (net.Dialer{Timeout: ...}).
	// Both nil: fasthttp's own dialer, bounded by the attempt's deadline.
	Dial func(addr string) (net.Conn, error)
	// MaxConnsPerHost caps pooled connections to one function host. Default 1024.
	MaxConnsPerHost int
	// MaxIdleConnDuration closes keep-alive connections idle this long. Default 10s.
	MaxIdleConnDuration time.Duration
	// HealthTimeout bounds one health probe (and never exceeds the check interval). Default 2s.
	HealthTimeout time.Duration
	// HealthConcurrency caps health probes in flight during one round. Default 8.
	HealthConcurrency int
	// UserAgent is sent on every call. Default "sseedge-invoker".
	UserAgent string
	// TracerProvider makes the invoke spans. Default: otel's global provider (no-op until set).
	TracerProvider trace.TracerProvider
	// Propagator writes trace context onto calls. Default: W3C trace context plus whatever
	// otel's global propagator adds (baggage, ...), so traceparent is always sent.
	Propagator propagation.TextMapPropagator
	// Logger receives health-check trouble. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxConnsPerHost <= 0 {
		c.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if c.MaxIdleConnDuration <= 0 {
		c.MaxIdleConnDuration = DefaultMaxIdleConnDuration
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.HealthConcurrency <= 0 {
		c.HealthConcurrency = DefaultHealthConcurrency
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
