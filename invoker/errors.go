package invoker

import (
	"errors"
	"fmt"
	"time"
)

// Code is the stable, machine-readable reason an invocation failed. API bodies carry it as "code".
type Code string

// The failure codes of Invoke.
const (
	// CodeCircuitOpen: every usable endpoint's breaker is open; no request reached the function.
	CodeCircuitOpen Code = "circuit_open"
	// CodeTimeout: the invocation's deadline passed before the function answered.
	CodeTimeout Code = "timeout"
	// CodeUpstreamError: every attempt ended in a retryable status or a connection error.
	CodeUpstreamError Code = "upstream_error"
	// CodeNoHealthyEndpoint: every endpoint failed its health check.
	CodeNoHealthyEndpoint Code = "no_healthy_endpoint"
	// CodeResponseTooLarge: the function's response exceeded Config.MaxResponseBytes.
	CodeResponseTooLarge Code = "response_too_large"
	// CodeCanceled: the caller's context was canceled, or the Invoker was closed.
	CodeCanceled Code = "canceled"
	// CodeInvalidFunction: the function cannot be called as given (no endpoint).
	CodeInvalidFunction Code = "invalid_function"
)

// Sentinels matched by errors.Is against an *Error of the same code.
var (
	ErrCircuitOpen       = errors.New(string(CodeCircuitOpen))
	ErrTimeout           = errors.New(string(CodeTimeout))
	ErrUpstream          = errors.New(string(CodeUpstreamError))
	ErrNoHealthyEndpoint = errors.New(string(CodeNoHealthyEndpoint))
	ErrResponseTooLarge  = errors.New(string(CodeResponseTooLarge))
	ErrCanceled          = errors.New(string(CodeCanceled))
	ErrInvalidFunction   = errors.New(string(CodeInvalidFunction))
)

func sentinel(c Code) error {
	switch c {
	case CodeCircuitOpen:
		return ErrCircuitOpen
	case CodeTimeout:
		return ErrTimeout
	case CodeUpstreamError:
		return ErrUpstream
	case CodeNoHealthyEndpoint:
		return ErrNoHealthyEndpoint
	case CodeResponseTooLarge:
		return ErrResponseTooLarge
	case CodeCanceled:
		return ErrCanceled
	default:
		return ErrInvalidFunction
	}
}

// Error is an invocation that produced no usable function response. A function that answers with a
// non-retryable 4xx or 5xx is not an Error: that is a Result carrying the status.
type Error struct {
	Code     Code
	Function string
	// Message says what happened, for people ("function returned 503 after 3 attempts").
	Message string
	// Status is the last upstream HTTP status, 0 when no response arrived.
	Status int
	// Attempts is how many requests were sent to the function.
	Attempts int
	// Endpoint is the (redacted) endpoint of the last attempt, if any.
	Endpoint string
	Duration time.Duration
	TraceID  string
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("invoke %s: %s: %s", e.Function, e.Code, e.Message)
}

// Unwrap exposes both the code's sentinel (errors.Is(err, ErrTimeout)) and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{sentinel(e.Code)}
	}
	return []error{sentinel(e.Code), e.Err}
}
