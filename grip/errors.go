package grip

import (
	"errors"
	"fmt"
	"net/http"
)

// Code names a kind of GRIP failure; it is the "code" of the edge's JSON error.
type Code string

// The codes of Error.
const (
	// CodeMalformed: a Grip-* header, a publish body or SSE text that does not parse.
	CodeMalformed Code = "grip_malformed"
	// CodeUnknownInstruction: a Grip-* response header that GRIP does not define.
	CodeUnknownInstruction Code = "grip_unknown_instruction"
	// CodeUnsupported: a GRIP feature sseedge does not implement (Grip-Link, Grip-Set-Meta, channel
	// filters, application/grip-instruct bodies, http-stream actions other than send and close, items
	// with no http-stream format).
	CodeUnsupported Code = "grip_unsupported"
	// CodeHoldResponse: Grip-Hold: response (long-polling), refused with 501 for now.
	CodeHoldResponse Code = "grip_hold_response_unsupported"
	// CodeBadChannel: a channel that maps to no valid topic (see ChannelTopic).
	CodeBadChannel Code = "grip_bad_channel"
	// CodeTooMany: more channels, items or events than the Limits allow.
	CodeTooMany Code = "grip_too_many"
	// CodeTooLarge: a header, body, content or event larger than the Limits allow.
	CodeTooLarge Code = "grip_too_large"
	// CodeUnauthorized: a publish without a valid admin token or GRIP control JWT.
	CodeUnauthorized Code = "grip_unauthorized"
)

// The sentinels an *Error matches with errors.Is, one per Code.
var (
	ErrMalformed          = errors.New("malformed GRIP")
	ErrUnknownInstruction = errors.New("unknown GRIP instruction")
	ErrUnsupported        = errors.New("GRIP feature not supported")
	ErrHoldResponse       = errors.New("Grip-Hold: response is not supported")
	ErrBadChannel         = errors.New("bad GRIP channel")
	ErrTooMany            = errors.New("too many GRIP items")
	ErrTooLarge           = errors.New("GRIP input too large")
	ErrUnauthorized       = errors.New("GRIP publish not authorized")
)

var sentinels = map[Code]error{
	CodeMalformed:          ErrMalformed,
	CodeUnknownInstruction: ErrUnknownInstruction,
	CodeUnsupported:        ErrUnsupported,
	CodeHoldResponse:       ErrHoldResponse,
	CodeBadChannel:         ErrBadChannel,
	CodeTooMany:            ErrTooMany,
	CodeTooLarge:           ErrTooLarge,
	CodeUnauthorized:       ErrUnauthorized,
}

// Error is every failure of this package: what is wrong (Code, and Where: a header name or a JSON path
// such as "items[2].formats.http-stream.content"), said for people (Msg), and the HTTP status the edge
// should answer with. It wraps its Code's sentinel and the cause, when there is one.
type Error struct {
	Code   Code
	Status int
	Where  string
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Where != "" {
		s = e.Where + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return "grip: " + s
}

// Unwrap gives the Code's sentinel and the cause.
func (e *Error) Unwrap() []error {
	out := []error{sentinels[e.Code]}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// side says whose input is parsed, which decides the status of a bad one: a function's answer is the
// upstream's fault (502), a publish body the caller's (400).
type side int

const (
	upstream side = iota // a function's answer
	caller               // a publish request
)

func (s side) errorf(code Code, where, format string, args ...any) *Error {
	e := &Error{Code: code, Where: where, Msg: fmt.Sprintf(format, args...)}
	e.Status = s.status(code)
	return e
}

func (s side) wrap(code Code, where string, err error, format string, args ...any) *Error {
	e := s.errorf(code, where, format, args...)
	e.Err = err
	return e
}

func (s side) status(code Code) int {
	switch {
	case code == CodeHoldResponse:
		return http.StatusNotImplemented
	case code == CodeUnauthorized:
		return http.StatusUnauthorized
	case s == upstream:
		return http.StatusBadGateway
	case code == CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusBadRequest
	}
}
