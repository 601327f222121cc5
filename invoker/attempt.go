package invoker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// attemptResult is what one request to one endpoint produced: a response, or a transport error.
type attemptResult struct {
	status      int
	body        []byte
	contentType string
	retryAfter  time.Duration // -1 when absent or unreadable
	err         error         // transport error; nil when a response arrived
	timedOut    bool          // err was the attempt's deadline
	header      http.Header   // the answer's header, for forwarded requests
}

// attempt sends one request to ep and waits for the answer until the attempt's deadline. The
// returned error is for the breaker only: errFailure for a connect error, timeout, 5xx or 429,
// errNotCounted when the edge itself had no connection to spare, nil otherwise.
func (inv *Invoker) attempt(ctx context.Context, iv *invocation, ep *endpointState) (*attemptResult, error) {
	deadline := iv.deadline
	if at := iv.fn.Retry.AttemptTimeout.Std(); at > 0 {
		deadline = earliest(deadline, time.Now().Add(at))
	}
	ctx, span := inv.tracer.Start(ctx, "invoke "+iv.fn.Name+" attempt", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", iv.fn.Method),
			attribute.String("url.full", ep.display),
			attribute.Int("sseedge.attempt", iv.attempts+1),
		))
	defer span.End()

	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	method := iv.fn.Method
	if method == "" {
		method = registry.DefaultMethod
	}
	fw := iv.req.Forward
	if fw != nil {
		method = fw.Method
		setForwardURI(req, ep.url, fw)
		for _, h := range fw.Header {
			req.Header.Add(h[0], h[1])
		}
	} else {
		req.SetRequestURI(ep.url)
	}
	req.Header.SetMethod(method)
	for k, v := range iv.fn.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range iv.req.Header {
		req.Header.Set(k, v)
	}
	switch {
	case fw == nil:
		req.Header.SetContentType("application/json")
	case fw.ContentType != "":
		req.Header.SetContentType(fw.ContentType)
	default:
		req.Header.Del(fasthttp.HeaderContentType)
	}
	if method == fasthttp.MethodHead {
		resp.SkipBody = true
	}
	req.Header.Set("X-Invocation-Id", iv.req.InvocationID)
	if iv.req.ClientID != "" {
		req.Header.Set("X-Client-Id", iv.req.ClientID)
	}
	inv.prop.Inject(ctx, metrics.RequestHeaderCarrier{Header: &req.Header})
	req.SetBodyRaw(iv.req.Payload)

	err := inv.client.DoDeadline(req, resp, deadline)
	res := &attemptResult{retryAfter: -1}
	if err != nil {
		res.err = err
		res.timedOut = isTimeout(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		ep.setLastError(err.Error())
		switch {
		case errors.Is(err, fasthttp.ErrNoFreeConns):
			return res, errNotCounted
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			return res, nil // the function answered; its size is our limit, not its failure
		}
		return res, errFailure
	}

	res.status = resp.StatusCode()
	res.body = append([]byte(nil), resp.Body()...)
	res.contentType = string(resp.Header.Peek(fasthttp.HeaderContentType))
	if fw != nil {
		res.header = responseHeader(&resp.Header)
	}
	if res.status == fasthttp.StatusTooManyRequests {
		res.retryAfter = parseRetryAfter(resp.Header.Peek(fasthttp.HeaderRetryAfter))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", res.status))
	if res.status >= 500 || res.status == fasthttp.StatusTooManyRequests {
		span.SetStatus(codes.Error, strconv.Itoa(res.status))
		ep.setLastError("status " + strconv.Itoa(res.status))
		return res, errFailure
	}
	return res, nil
}

// setForwardURI points req at endpoint with fw's path appended and fw's query, when it has one.
func setForwardURI(req *fasthttp.Request, endpoint string, fw *Forward) {
	req.SetRequestURI(endpoint)
	u := req.URI()
	base := strings.TrimSuffix(string(u.PathOriginal()), "/")
	p := fw.Path
	if p != "" && p[0] != '/' {
		p = "/" + p
	}
	if p == "" && base == "" {
		p = "/"
	}
	u.SetPath(base + p)
	if fw.RawQuery != "" {
		u.SetQueryString(fw.RawQuery)
	}
}

// responseHeader copies a forwarded answer's header (fasthttp reuses its buffers).
func responseHeader(h *fasthttp.ResponseHeader) http.Header {
	out := make(http.Header, h.Len())
	for k, v := range h.All() {
		name := http.CanonicalHeaderKey(string(k))
		out[name] = append(out[name], string(v))
	}
	return out
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// isTimeout reports whether err means the attempt ran out of time (dialing, writing or reading).
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func errorType(err error) string {
	switch {
	case isTimeout(err):
		return "timeout"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "response_too_large"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no_free_connections"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "connect"
	}
	return "transport"
}

// parseRetryAfter reads a Retry-After given in seconds; -1 when absent or not a number of seconds.
func parseRetryAfter(v []byte) time.Duration {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 86400 {
		return -1
	}
	return time.Duration(n) * time.Second
}
