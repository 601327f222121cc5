// Package registry holds what the edge knows about the serverless functions it may invoke: their
// definition (Function), its validation and defaults, and the Store interface with an in-memory
// backend, and the Directory of which node holds which client with its in-memory backend. It knows no
// Redis: the Redis backends, with client-side caching, are in registry/redisstore.
package registry

import (
	"maps"
	"slices"
	"time"
)

// Defaults filled in by Normalize for fields a registration leaves out.
const (
	DefaultMethod          = "POST"
	DefaultTimeout         = 30 * time.Second
	DefaultMaxAttempts     = 3
	DefaultBackoffBase     = 100 * time.Millisecond
	DefaultBackoffCap      = 2 * time.Second
	DefaultConsecutiveFail = 5
	DefaultMinRequests     = 10
	DefaultOpenDuration    = 30 * time.Second
	DefaultHalfOpenProbes  = 1
	DefaultBreakerWindow   = 60 * time.Second
)

// DefaultRetryStatuses returns the upstream statuses retried when a registration names none. It is a
// function, not a variable, so no caller can change the default for everybody.
func DefaultRetryStatuses() []int { return []int{502, 503, 504, 429} }

// Function is one registered serverless function: where it lives and how the edge calls it. The JSON
// form is the body of POST /admin/functions and the stored form of every backend.
type Function struct {
	// Name identifies the function in /invoke/{name}; ^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$.
	Name string `json:"name"`
	// Endpoint is the function's URL when it has one; Endpoints lists several, load-balanced.
	// Exactly one of the two is set.
	Endpoint  string   `json:"endpoint,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"`
	// Method is the HTTP method of a call: GET, POST (default), PUT, PATCH or DELETE.
	Method string `json:"method"`
	// Timeout bounds a whole invocation, retries and back-off included. Default 30s.
	Timeout     Duration          `json:"timeout"`
	Description string            `json:"description,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	// HealthEndpoint, when set, is probed with GET (2xx = healthy): an absolute URL, or a path
	// ("/health") resolved against each endpoint's origin.
	HealthEndpoint string `json:"health_endpoint,omitempty"`
	// MCP marks a function that speaks MCP (JSON-RPC); reserved for the MCP gateway.
	MCP bool `json:"mcp"`
	// Grip marks a function that speaks GRIP: it is reached at /grip/{name}/{path…}, gets the client's
	// request forwarded (signed with Grip-Sig) and may answer Grip-Hold: stream (docs/grip.md).
	Grip bool `json:"grip"`
	// Idempotent records that a call may safely run twice; stored for policies that need it.
	Idempotent bool    `json:"idempotent"`
	Retry      Retry   `json:"retry"`
	Breaker    Breaker `json:"breaker"`
}

// Retry says which failed attempts are tried again and how long to wait in between. Back-off uses
// full jitter: before retry n (0-based) the invoker sleeps rand(0, min(BackoffCap, BackoffBase*2^n)).
type Retry struct {
	// MaxAttempts counts the first call too: 1 disables retries. Default 3.
	MaxAttempts int      `json:"max_attempts"`
	BackoffBase Duration `json:"backoff_base"`
	BackoffCap  Duration `json:"backoff_cap"`
	// Statuses are the upstream statuses worth retrying. Absent: 502, 503, 504, 429. An empty list
	// retries no status (connect errors and attempt timeouts still are).
	Statuses []int `json:"statuses"`
	// AttemptTimeout, when positive, bounds each attempt so a hanging attempt leaves time for a
	// retry; 0 lets one attempt use whatever remains of Timeout.
	AttemptTimeout Duration `json:"attempt_timeout,omitempty"`
}

// Breaker configures the circuit breaker kept per function endpoint. It opens after
// ConsecutiveFailures failures in a row, or, when FailureRatio > 0, once at least MinRequests calls
// in the current Window failed at that ratio or more; it stays open for OpenDuration, then lets
// HalfOpenProbes calls through and closes when they all succeed.
type Breaker struct {
	ConsecutiveFailures int      `json:"consecutive_failures"`
	FailureRatio        float64  `json:"failure_ratio"`
	MinRequests         int      `json:"min_requests"`
	OpenDuration        Duration `json:"open_duration"`
	HalfOpenProbes      int      `json:"half_open_probes"`
	// Window is the closed-state period after which counts start afresh. Default 60s.
	Window Duration `json:"window"`
}

// Targets returns the endpoints calls are spread over: Endpoints, or the single Endpoint.
func (f Function) Targets() []string {
	if len(f.Endpoints) > 0 {
		return f.Endpoints
	}
	if f.Endpoint != "" {
		return []string{f.Endpoint}
	}
	return nil
}

// Clone returns a deep copy, so a store or cache can hand functions out without sharing maps or
// slices with its callers.
func (f Function) Clone() Function {
	f.Endpoints = slices.Clone(f.Endpoints)
	f.Headers = maps.Clone(f.Headers)
	f.Retry.Statuses = slices.Clone(f.Retry.Statuses)
	return f
}

// Normalize returns f with defaults filled in and the method upper-cased, or a *FieldError naming
// the first field that is wrong.
func (f Function) Normalize() (Function, error) {
	f = f.Clone()
	if f.Method == "" {
		f.Method = DefaultMethod
	}
	f.Method = upperASCII(f.Method)
	if f.Timeout == 0 {
		f.Timeout = Duration(DefaultTimeout)
	}
	r := &f.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.BackoffBase == 0 {
		r.BackoffBase = Duration(DefaultBackoffBase)
	}
	if r.BackoffCap == 0 {
		r.BackoffCap = max(Duration(DefaultBackoffCap), r.BackoffBase)
	}
	if r.Statuses == nil {
		r.Statuses = DefaultRetryStatuses()
	}
	b := &f.Breaker
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = DefaultConsecutiveFail
	}
	if b.FailureRatio > 0 && b.MinRequests == 0 {
		b.MinRequests = DefaultMinRequests
	}
	if b.OpenDuration == 0 {
		b.OpenDuration = Duration(DefaultOpenDuration)
	}
	if b.HalfOpenProbes == 0 {
		b.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if b.Window == 0 {
		b.Window = Duration(DefaultBreakerWindow)
	}
	if err := f.Validate(); err != nil {
		return Function{}, err
	}
	return f, nil
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
