package metrics

import (
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/propagation"
)

// RequestHeaderCarrier lets an OpenTelemetry propagator read and write a fasthttp request header:
// Extract reads the caller's traceparent from requests reaching the edge (publish, invoke), Inject
// puts traceparent on the calls the invoker makes to functions.
type RequestHeaderCarrier struct {
	Header *fasthttp.RequestHeader
}

var _ propagation.TextMapCarrier = RequestHeaderCarrier{}

// Get returns the value of key, or "".
func (c RequestHeaderCarrier) Get(key string) string { return string(c.Header.Peek(key)) }

// Set replaces the value of key.
func (c RequestHeaderCarrier) Set(key, value string) { c.Header.Set(key, value) }

// Keys lists the header names present.
func (c RequestHeaderCarrier) Keys() []string {
	keys := make([]string, 0, c.Header.Len())
	for k := range c.Header.All() {
		keys = append(keys, string(k))
	}
	return keys
}
