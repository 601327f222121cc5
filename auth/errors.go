package auth

import (
	"errors"
	"net/http"
)

// Error is every error this package returns to a caller that must answer a client: it carries the HTTP
// status to answer with, a stable machine-readable Code for the {"error","code"} body, and a Retry hint
// telling the client what to do next (auth failures are never fixed by resending the same request).
//
// Returned errors match the sentinels below with errors.Is (by Code), and unwrap to their cause (for
// instance a github.com/golang-jwt/jwt/v5 error) for logs.
type Error struct {
	Status  int    // HTTP status: 401 or 403
	Code    string // stable code, e.g. "token_expired"
	Message string // human-readable summary, safe to show to the client
	Retry   string // what the client should do before trying again
	cause   error
}

// Error returns the message, the retry hint and the cause, all safe to show to the client.
func (e *Error) Error() string {
	s := e.Message
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	if e.Retry != "" {
		s += " (" + e.Retry + ")"
	}
	return s
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same Code, so errors.Is(err, ErrTokenExpired) holds for
// every expired-token error whatever its cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// with returns a copy of the sentinel e carrying cause.
func (e *Error) with(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// Sentinel errors. Compare with errors.Is; never modify them.
var (
	// ErrMissingToken: an admin or publish call without "Authorization: Bearer <token>".
	ErrMissingToken = &Error{Status: http.StatusUnauthorized, Code: "admin_token_missing",
		Message: "admin token missing", Retry: "send Authorization: Bearer <ADMIN_TOKEN>"}
	// ErrBadToken: an admin or publish call with the wrong bearer token.
	ErrBadToken = &Error{Status: http.StatusUnauthorized, Code: "admin_token_invalid",
		Message: "admin token invalid", Retry: "check the configured ADMIN_TOKEN; do not retry with this one"}

	// ErrTokenMissing: a stream request carrying no token while stream auth is on.
	ErrTokenMissing = &Error{Status: http.StatusUnauthorized, Code: "token_missing",
		Message: "stream token missing", Retry: "send a token in X-Authorization: Bearer <token> or ?token="}
	// ErrTokenInvalid: malformed, badly signed, not HS256 (alg none, HS512, RS256 ...), missing exp, or
	// not yet valid.
	ErrTokenInvalid = &Error{Status: http.StatusUnauthorized, Code: "token_invalid",
		Message: "stream token invalid", Retry: "get a valid token; retrying with this one cannot succeed"}
	// ErrTokenExpired: a well-signed token past its exp (plus leeway).
	ErrTokenExpired = &Error{Status: http.StatusUnauthorized, Code: "token_expired",
		Message: "stream token expired", Retry: "get a new token, then reconnect; do not retry blindly with the expired one"}
	// ErrWrongSubject: a valid token whose sub is not the client ID of the stream.
	ErrWrongSubject = &Error{Status: http.StatusForbidden, Code: "token_wrong_subject",
		Message: "stream token was issued for another client", Retry: "get a token whose sub is this client ID"}
	// ErrTopicDenied: a valid token whose topics do not cover the requested topic.
	ErrTopicDenied = &Error{Status: http.StatusForbidden, Code: "token_topic_denied",
		Message: "stream token does not allow this topic", Retry: "get a token whose topics include this topic or a parent of it"}
)

// Code maps err to the HTTP status and stable code of the API error body. nil gives (200, ""); an error
// that is not from this package gives (500, "internal_error").
func Code(err error) (status int, code string) {
	if err == nil {
		return http.StatusOK, ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status, e.Code
	}
	return http.StatusInternalServerError, "internal_error"
}
