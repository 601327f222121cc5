package invoker

import (
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier lets an OpenTelemetry propagator read and write a fasthttp request header: Inject
// puts traceparent on calls to functions, Extract reads it from requests reaching the API.
type HeaderCarrier struct {
	Header *fasthttp.RequestHeader
}

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the value of key, or "".
func (c HeaderCarrier) Get(key string) string { return string(c.Header.Peek(key)) }

// Set replaces the value of key.
func (c HeaderCarrier) Set(key, value string) { c.Header.Set(key, value) }

// Keys lists the header names present.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, c.Header.Len())
	for k := range c.Header.All() {
		keys = append(keys, string(k))
	}
	return keys
}
