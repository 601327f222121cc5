// Package invoker calls serverless functions over HTTP on behalf of the edge: one pooled fasthttp
// client, a circuit breaker per function endpoint, retries with full-jitter back-off inside the
// invocation's deadline, round-robin over healthy endpoints, health checks and tracing. It knows
// nothing of sockets or streams: callers hand it a registry.Function and a payload and get back a
// Result or an *Error.
package invoker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// TracerName is the instrumentation scope of the invoker's spans.
const TracerName = "sseedge/invoker"

// Request is one invocation's input.
type Request struct {
	// Payload is sent as the JSON request body (Content-Type: application/json).
	Payload []byte
	// ClientID, when set, is sent as X-Client-Id.
	ClientID string
	// InvocationID is sent as X-Invocation-Id; one is generated when empty.
	InvocationID string
	// Timeout overrides the function's timeout when positive.
	Timeout time.Duration
	// Header holds extra request headers (the MCP gateway's session headers, for instance). The
	// edge's own headers (X-Invocation-Id, X-Client-Id, traceparent, Content-Type) win.
	Header map[string]string
	// Forward, when set, makes this a forwarded request (a GRIP call): its own method, path, query,
	// headers and content type instead of the function's method and a JSON payload, and the answer's
	// headers kept in Result.Header. Payload is its body.
	Forward *Forward
}

// Forward is what a forwarded request carries of the client's request.
type Forward struct {
	// Method is the client's method (GET, HEAD, POST, …).
	Method string
	// Path is appended to the endpoint's path ("/stream" after "http://fn/base" is "/base/stream").
	Path string
	// RawQuery replaces the endpoint's query when not empty.
	RawQuery string
	// ContentType is the body's type; "" sends none.
	ContentType string
	// Header lists header lines, name and value, in order; repeated names are kept.
	Header [][2]string
}

// Result is the function's answer: any status that was not retried away, with its body.
type Result struct {
	Status       int
	Body         []byte
	ContentType  string
	Attempts     int
	Duration     time.Duration
	Endpoint     string // redacted endpoint that answered
	InvocationID string
	TraceID      string
	// Header is the answer's header, kept for forwarded requests only (Request.Forward).
	Header http.Header
}

// Invoker calls functions. It is safe for concurrent use; create one per process with New and
// stop it with Close.
type Invoker struct {
	cfg    Config
	client *fasthttp.Client
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	mu  sync.RWMutex
	fns map[string]*fnState

	// life ends when Close is called; health checks run under it.
	life    context.Context
	end     context.CancelFunc
	closed  atomic.Bool
	health  sync.WaitGroup
	started atomic.Bool
}

// New returns an Invoker configured by cfg (zero fields take their defaults).
func New(cfg Config) *Invoker {
	cfg = cfg.withDefaults()
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	prop := cfg.Propagator
	if prop == nil {
		prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, otel.GetTextMapPropagator())
	}
	client := &fasthttp.Client{
		Name:                cfg.UserAgent,
		DialTimeout:         dialer(cfg),
		MaxConnsPerHost:     cfg.MaxConnsPerHost,
		MaxIdleConnDuration: cfg.MaxIdleConnDuration,
		ReadBufferSize:      16 << 10,
		MaxResponseBodySize: cfg.MaxResponseBytes,
		StreamResponseBody:  false,
		// The invoker retries by its own policy, counting every attempt: fasthttp cannot tell a
		// pooled connection closed while idle from a function that read the request and died.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		DisablePathNormalizing:    true,
	}
	life, end := context.WithCancel(context.Background())
	return &Invoker{
		cfg:    cfg,
		client: client,
		tracer: tp.Tracer(TracerName),
		prop:   prop,
		fns:    make(map[string]*fnState),
		life:   life,
		end:    end,
	}
}

// dialer opens connections with the configured hook (fasthttp's dialer by default) and gives each
// new connection a deadline of the attempt's remaining time. fasthttp replaces it with the
// request's own deadlines before writing, but without it a TLS handshake that stalls would not
// be bounded by the invocation's deadline.
func dialer(cfg Config) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		var conn net.Conn
		var err error
		switch {
		case cfg.DialTimeout != nil:
			conn, err = cfg.DialTimeout(addr, timeout)
		case cfg.Dial != nil:
			conn, err = cfg.Dial(addr)
		default:
			conn, err = fasthttp.DialTimeout(addr, timeout)
		}
		if err != nil {
			return nil, err
		}
		if timeout > 0 {
			if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
				conn.Close()
				return nil, fmt.Errorf("invoker: set deadline on %s: %w", addr, err)
			}
		}
		return conn, nil
	}
}

// Close stops health checks, waits for the health loop to end and closes idle connections.
// Invocations already running finish within their own deadlines; new ones fail with CodeCanceled.
func (inv *Invoker) Close() {
	inv.closed.Store(true)
	inv.end()
	inv.health.Wait()
	inv.client.CloseIdleConnections()
}

// Forget drops the breakers and health of a function, for a deleted registration.
func (inv *Invoker) Forget(fnName string) {
	inv.mu.Lock()
	delete(inv.fns, fnName)
	inv.mu.Unlock()
	inv.cfg.Metrics.ForgetFunction(fnName)
}

// outcome is an invocation's label for sseedge_invocations_total.
func outcome(res Result, err error) metrics.Outcome {
	var e *Error
	switch {
	case err == nil && res.Status < 500:
		return metrics.OutcomeOK
	case errors.As(err, &e) && e.Code == CodeTimeout:
		return metrics.OutcomeTimeout
	case errors.As(err, &e) && e.Code == CodeCircuitOpen:
		return metrics.OutcomeCircuitOpen
	}
	return metrics.OutcomeError
}

// invocation is the bookkeeping of one Invoke call.
type invocation struct {
	fn       registry.Function
	req      Request
	start    time.Time
	deadline time.Time
	traceID  string
	attempts int
	last     *attemptResult
	lastEP   *endpointState
}

// Invoke calls fn with req and returns the function's response, or an *Error. Attempts go
// round-robin over fn's healthy endpoints whose breakers let them through; retryable outcomes
// (connect errors, attempt timeouts, fn.Retry.Statuses) are retried after a full-jitter back-off
// while the deadline (req.Timeout or fn.Timeout, or ctx's deadline if earlier) allows. Invoke never
// leaves a goroutine behind and returns by the deadline; a canceled ctx is noticed between attempts.
func (inv *Invoker) Invoke(ctx context.Context, fn registry.Function, req Request) (Result, error) {
	iv := &invocation{fn: fn, req: req, start: time.Now()}
	if iv.req.InvocationID == "" {
		iv.req.InvocationID = uuid.NewString()
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = fn.Timeout.Std()
	}
	if timeout <= 0 {
		timeout = registry.DefaultTimeout
	}
	iv.deadline = iv.start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(iv.deadline) {
		iv.deadline = d
	}

	ctx, span := inv.tracer.Start(ctx, "invoke "+fn.Name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("sseedge.function", fn.Name),
			attribute.String("sseedge.invocation_id", iv.req.InvocationID),
		))
	defer span.End()
	if !span.SpanContext().IsValid() {
		// Tracing is off and no caller trace came in: still give the function a traceparent,
		// so its logs can be correlated with ours.
		ctx = trace.ContextWithSpanContext(ctx, randomSpanContext())
	}
	iv.traceID = trace.SpanContextFromContext(ctx).TraceID().String()

	res, err := inv.invoke(ctx, iv)
	o := outcome(res, err)
	inv.cfg.Metrics.ObserveInvocation(fn.Name, o, time.Since(iv.start), iv.attempts)
	if o != metrics.OutcomeOK {
		inv.state(fn).failures.Add(1)
	}
	span.SetAttributes(attribute.Int("sseedge.attempts", iv.attempts))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return Result{}, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", res.Status))
	if res.Status >= 500 {
		span.SetStatus(codes.Error, "function returned "+strconv.Itoa(res.Status))
	}
	return res, nil
}

func (inv *Invoker) invoke(ctx context.Context, iv *invocation) (Result, error) {
	if inv.closed.Load() {
		return Result{}, iv.fail(CodeCanceled, "invoker closed", nil)
	}
	st := inv.state(iv.fn)
	if len(st.eps) == 0 {
		return Result{}, iv.fail(CodeInvalidFunction, "function has no endpoint", nil)
	}
	maxAttempts := max(iv.fn.Retry.MaxAttempts, 1)
	next := st.rr.Add(1) - 1
	for n := 0; n < maxAttempts; n++ {
		if err := ctx.Err(); err != nil {
			return Result{}, iv.contextDone(err)
		}
		if !time.Now().Before(iv.deadline) {
			return Result{}, iv.timeout()
		}
		ep, res, code := inv.pickAndCall(ctx, iv, st, &next)
		if code != "" {
			if iv.attempts == 0 {
				return Result{}, iv.fail(code, noEndpointMessage(code), nil)
			}
			break // the endpoints tried so far are now unusable: report what they said
		}
		iv.attempts++
		iv.last, iv.lastEP = res, ep

		switch {
		case res.err != nil && errors.Is(res.err, fasthttp.ErrBodyTooLarge):
			return Result{}, iv.fail(CodeResponseTooLarge,
				fmt.Sprintf("response larger than %d bytes", inv.cfg.MaxResponseBytes), res.err)
		case res.err == nil && !retryableStatus(res.status, iv.fn.Retry.Statuses):
			return Result{
				Status: res.status, Body: res.body, ContentType: res.contentType, Header: res.header,
				Attempts: iv.attempts, Duration: time.Since(iv.start), Endpoint: ep.display,
				InvocationID: iv.req.InvocationID, TraceID: iv.traceID,
			}, nil
		}
		if n == maxAttempts-1 {
			break
		}
		wait := backoff(n, iv.fn.Retry)
		if res.err == nil && res.status == fasthttp.StatusTooManyRequests && res.retryAfter >= 0 {
			wait = res.retryAfter
		}
		if !time.Now().Add(wait).Before(iv.deadline) {
			break // the wait would end past the deadline: stop with what we have
		}
		if err := sleep(ctx, wait); err != nil {
			return Result{}, iv.contextDone(err)
		}
	}
	if iv.last.timedOut {
		return Result{}, iv.timeout()
	}
	return Result{}, iv.upstreamError()
}

// pickAndCall makes one attempt on the next usable endpoint from *next on, moving *next past it.
// When no endpoint is usable it returns the code saying why.
func (inv *Invoker) pickAndCall(ctx context.Context, iv *invocation, st *fnState, next *uint64) (*endpointState, *attemptResult, Code) {
	n := uint64(len(st.eps))
	sawOpen := false
	for i := range n {
		idx := (*next + i) % n
		ep := st.eps[idx]
		if !ep.probeHealthy() {
			continue
		}
		res, err := ep.cb.Execute(func() (*attemptResult, error) {
			return inv.attempt(ctx, iv, ep)
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			sawOpen = true
			continue
		}
		*next = idx + 1
		return ep, res, ""
	}
	if sawOpen {
		return nil, nil, CodeCircuitOpen
	}
	return nil, nil, CodeNoHealthyEndpoint
}

func noEndpointMessage(c Code) string {
	if c == CodeCircuitOpen {
		return "circuit breaker open for every usable endpoint"
	}
	return "every endpoint failed its health check"
}

func (iv *invocation) fail(code Code, msg string, cause error) *Error {
	e := &Error{
		Code: code, Function: iv.fn.Name, Message: msg, Attempts: iv.attempts,
		Duration: time.Since(iv.start), TraceID: iv.traceID, Err: cause,
	}
	if iv.last != nil {
		e.Status = iv.last.status
	}
	if iv.lastEP != nil {
		e.Endpoint = iv.lastEP.display
	}
	return e
}

// contextDone reports the caller's context ending: its deadline is a timeout like ours.
func (iv *invocation) contextDone(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return iv.timeout()
	}
	return iv.fail(CodeCanceled, "caller canceled", err)
}

func (iv *invocation) timeout() *Error {
	var cause error
	if iv.last != nil {
		cause = iv.last.err
	}
	return iv.fail(CodeTimeout, fmt.Sprintf("no answer within the deadline after %d attempt(s)", iv.attempts), cause)
}

func (iv *invocation) upstreamError() *Error {
	last := iv.last
	if last.err != nil {
		return iv.fail(CodeUpstreamError, fmt.Sprintf("%v after %d attempt(s)", last.err, iv.attempts), last.err)
	}
	return iv.fail(CodeUpstreamError, fmt.Sprintf("function returned %d after %d attempt(s)", last.status, iv.attempts), nil)
}

func retryableStatus(status int, statuses []int) bool {
	for _, s := range statuses {
		if s == status {
			return true
		}
	}
	return false
}

// backoff is the full-jitter wait before retry n (0-based): rand(0, min(cap, base*2^n)).
func backoff(n int, r registry.Retry) time.Duration {
	base, ceiling := r.BackoffBase.Std(), r.BackoffCap.Std()
	if base <= 0 {
		base = registry.DefaultBackoffBase
	}
	if ceiling < base {
		ceiling = base
	}
	d := base
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return rand.N(d + 1)
}

// sleep waits d or until ctx is done, without leaving a timer or goroutine behind.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func randomSpanContext() trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for tid == (trace.TraceID{}) {
		putUint64(tid[:8], rand.Uint64())
		putUint64(tid[8:], rand.Uint64())
	}
	for sid == (trace.SpanID{}) {
		putUint64(sid[:], rand.Uint64())
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}
