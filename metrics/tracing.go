package metrics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TracingEnabled reports whether the standard OpenTelemetry environment asks for trace export: an
// OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or
// OTEL_TRACES_EXPORTER is "otlp", and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none
// turns it off.
func TracingEnabled() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// SetupTracing configures OpenTelemetry for the process from the standard OTEL_* environment.
//
// It always installs the W3C TraceContext and Baggage propagator globally, so an incoming
// traceparent is carried to the functions the edge invokes even when nothing is exported.
//
// When TracingEnabled is false it stops there: no tracer provider is installed, spans started
// through otel.Tracer are the no-op kind and cost next to nothing, and shutdown does nothing.
// Otherwise it installs a tracer provider that batches spans to an OTLP/HTTP exporter (endpoint,
// headers, timeout, compression and TLS come from OTEL_EXPORTER_OTLP_*; sampling from
// OTEL_TRACES_SAMPLER; batching from OTEL_BSP_*), with a resource naming the service
// (service.name = serviceName) and this node (service.instance.id = nodeID); OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override them. Only the HTTP protocol is built in: an endpoint expecting
// OTLP/gRPC will not receive anything.
//
// shutdown flushes the spans still queued and stops the exporter; call it once, at exit, with a
// deadline.
func SetupTracing(ctx context.Context, serviceName, nodeID string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{},
		propagation.Baggage{},
	))
	noop := func(context.Context) error { return nil }
	if !TracingEnabled() {
		return noop, nil
	}

	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("otlp trace exporter: %w", err)
	}
	attrs := resource.WithAttributes(semconv.ServiceName(serviceName))
	if nodeID != "" {
		attrs = resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceInstanceID(nodeID))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		attrs,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(), // last, so the environment wins
	)
	if err != nil && res == nil {
		_ = exp.Shutdown(ctx)
		return noop, fmt.Errorf("trace resource: %w", err)
	}
	// A partial resource (a detector failed, e.g. no host name) is still worth exporting under.

	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		return errors.Join(tp.ForceFlush(ctx), tp.Shutdown(ctx))
	}, nil
}
