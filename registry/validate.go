package registry

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// FieldError says which field of a registration is wrong and why. Field is the JSON path
// ("retry.max_attempts", "endpoints[1]", "headers.X-Api-Key").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Reason }

// Limits of a registration that keep one function from costing the edge too much.
const (
	MaxEndpoints      = 32
	MaxHeaders        = 64
	MaxURLLength      = 2048
	MaxDescription    = 1024
	MaxTimeout        = time.Hour
	MaxAttemptsLimit  = 10
	MaxHalfOpenProbes = 100
)

// namePattern is what a function name may look like. ValidName checks it by hand (no compiled
// regexp in a package variable); a test keeps the two in step.
const namePattern = `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$`

// ValidName reports whether s may name a function.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
		if !alnum && (i == 0 || (c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// reservedHeader reports whether name is set by the invoker on every call (or by HTTP itself) and so
// cannot be registered.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
		"content-type", "x-invocation-id", "x-client-id", "traceparent", "tracestate":
		return true
	}
	return false
}

// Validate checks a normalized function and returns a *FieldError naming the first wrong field.
// Stores call it on Put, so nothing invalid is ever stored.
func (f Function) Validate() error {
	if !ValidName(f.Name) {
		return &FieldError{"name", "must match " + namePattern}
	}
	if err := f.validateEndpoints(); err != nil {
		return err
	}
	switch f.Method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		return &FieldError{"method", fmt.Sprintf("%q is not one of GET, POST, PUT, PATCH, DELETE", f.Method)}
	}
	if f.Timeout <= 0 || f.Timeout.Std() > MaxTimeout {
		return &FieldError{"timeout", "must be positive and at most " + MaxTimeout.String()}
	}
	if f.Grip && f.MCP {
		return &FieldError{"grip", "a function speaks MCP or GRIP, not both"}
	}
	if len(f.Description) > MaxDescription {
		return &FieldError{"description", fmt.Sprintf("longer than %d bytes", MaxDescription)}
	}
	if err := validateHeaders(f.Headers); err != nil {
		return err
	}
	if f.HealthEndpoint != "" {
		if strings.HasPrefix(f.HealthEndpoint, "/") {
			if _, err := url.Parse(f.HealthEndpoint); err != nil || len(f.HealthEndpoint) > MaxURLLength {
				return &FieldError{"health_endpoint", "not a valid path"}
			}
		} else if reason := checkURL(f.HealthEndpoint); reason != "" {
			return &FieldError{"health_endpoint", reason + " (or give a path starting with /)"}
		}
	}
	if err := f.Retry.validate(f.Timeout); err != nil {
		return err
	}
	return f.Breaker.validate()
}

func (f Function) validateEndpoints() error {
	switch {
	case f.Endpoint != "" && len(f.Endpoints) > 0:
		return &FieldError{"endpoint", "give either endpoint or endpoints, not both"}
	case f.Endpoint != "":
		if reason := checkURL(f.Endpoint); reason != "" {
			return &FieldError{"endpoint", reason}
		}
	case len(f.Endpoints) > 0:
		if len(f.Endpoints) > MaxEndpoints {
			return &FieldError{"endpoints", fmt.Sprintf("more than %d endpoints", MaxEndpoints)}
		}
		for i, ep := range f.Endpoints {
			field := fmt.Sprintf("endpoints[%d]", i)
			if reason := checkURL(ep); reason != "" {
				return &FieldError{field, reason}
			}
			if slices.Index(f.Endpoints, ep) != i {
				return &FieldError{field, "duplicate endpoint"}
			}
		}
	default:
		return &FieldError{"endpoint", "required: an absolute http(s) URL"}
	}
	return nil
}

// checkURL returns why s is not an absolute http(s) URL, or "" when it is one.
func checkURL(s string) string {
	if len(s) > MaxURLLength {
		return fmt.Sprintf("URL longer than %d bytes", MaxURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL"
	}
	if !u.IsAbs() || u.Host == "" {
		return "must be an absolute http(s) URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("scheme %q is not http or https", u.Scheme)
	}
	if u.Fragment != "" {
		return "must not have a fragment"
	}
	return ""
}

func validateHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return &FieldError{"headers", fmt.Sprintf("more than %d headers", MaxHeaders)}
	}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		field := "headers." + name
		if !validToken(name) {
			return &FieldError{field, "not a valid header name"}
		}
		if reservedHeader(name) {
			return &FieldError{field, "set by the edge on every call; cannot be registered"}
		}
		if strings.ContainsAny(h[name], "\r\n\x00") {
			return &FieldError{field, "value contains a control character"}
		}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token, the grammar of header names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (r Retry) validate(timeout Duration) error {
	if r.MaxAttempts < 1 || r.MaxAttempts > MaxAttemptsLimit {
		return &FieldError{"retry.max_attempts", fmt.Sprintf("must be between 1 and %d", MaxAttemptsLimit)}
	}
	if r.BackoffBase <= 0 {
		return &FieldError{"retry.backoff_base", "must be positive"}
	}
	if r.BackoffCap < r.BackoffBase {
		return &FieldError{"retry.backoff_cap", "must be at least retry.backoff_base"}
	}
	if r.AttemptTimeout < 0 || r.AttemptTimeout > timeout {
		return &FieldError{"retry.attempt_timeout", "must be between 0 and timeout"}
	}
	for i, s := range r.Statuses {
		if s < 400 || s > 599 {
			return &FieldError{fmt.Sprintf("retry.statuses[%d]", i), fmt.Sprintf("%d is not a 4xx or 5xx status", s)}
		}
	}
	return nil
}

func (b Breaker) validate() error {
	if b.ConsecutiveFailures < 1 {
		return &FieldError{"breaker.consecutive_failures", "must be at least 1"}
	}
	if math.IsNaN(b.FailureRatio) || b.FailureRatio < 0 || b.FailureRatio > 1 {
		return &FieldError{"breaker.failure_ratio", "must be between 0 (off) and 1"}
	}
	if b.MinRequests < 0 {
		return &FieldError{"breaker.min_requests", "must not be negative"}
	}
	if b.OpenDuration <= 0 {
		return &FieldError{"breaker.open_duration", "must be positive"}
	}
	if b.HalfOpenProbes < 1 || b.HalfOpenProbes > MaxHalfOpenProbes {
		return &FieldError{"breaker.half_open_probes", fmt.Sprintf("must be between 1 and %d", MaxHalfOpenProbes)}
	}
	if b.Window <= 0 {
		return &FieldError{"breaker.window", "must be positive"}
	}
	return nil
}
