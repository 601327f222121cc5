package edge

import (
	"bytes"
	"errors"
	"strings"
)

// Limits on a request head read by the edge itself.
const (
	DefaultMaxHeadBytes = 8 << 10
	maxHeaderCount      = 100
)

var (
	errHeadIncomplete = errors.New("request head incomplete")
	errHeadTooLarge   = errors.New("request head too large")
	errBadRequestLine = errors.New("malformed request line")
	errBadHeader      = errors.New("malformed header line")
	errBareLF         = errors.New("request head lines must end in CRLF")
	errTooManyHeaders = errors.New("too many header lines")
)

// requestHead is the part of an HTTP/1.x request head a stream needs. Its strings are copies, so the
// connection's input buffer can be released once the head is parsed.
type requestHead struct {
	method   string
	path     string // as sent, still percent-encoded
	rawQuery string
	headers  []headerField
}

type headerField struct{ name, value string }

// get returns the first value of a header, matched case-insensitively.
func (h *requestHead) get(name string) string {
	for _, f := range h.headers {
		if len(f.name) == len(name) && equalFoldASCII(f.name, name) {
			return f.value
		}
	}
	return ""
}

// headEnd returns the length of the head in b including its blank line, or -1 while it is incomplete.
// It finds heads whose lines end in a bare LF too, so that they are refused (bareLF) as soon as they
// are whole rather than waited on: fasthttp reads only CRLF heads, and both parsers keep one rule.
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		line := b[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return i
		}
	}
	return -1
}

// bareLF reports whether a line of head ends in LF without CR.
func bareLF(head []byte) bool {
	for i, c := range head {
		if c == '\n' && (i == 0 || head[i-1] != '\r') {
			return true
		}
	}
	return false
}

// parseHead parses one request head from b, which must hold at most maxBytes. It returns the head and its
// length, errHeadIncomplete when more input is needed, or an error for input no valid request starts with.
func parseHead(b []byte, maxBytes int) (requestHead, int, error) {
	var h requestHead
	end := headEnd(b)
	if end < 0 {
		if len(b) >= maxBytes {
			return h, 0, errHeadTooLarge
		}
		return h, 0, errHeadIncomplete
	}
	if end > maxBytes {
		return h, 0, errHeadTooLarge
	}
	if bareLF(b[:end]) {
		return h, 0, errBareLF
	}
	rest := b[:end]
	line, rest := nextLine(rest)
	if err := h.parseRequestLine(line); err != nil {
		return h, 0, err
	}
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			return h, end, nil
		}
		if len(h.headers) == maxHeaderCount {
			return h, 0, errTooManyHeaders
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return h, 0, errBadHeader // also refuses obsolete line folding, which starts with a space
		}
		value := bytes.Trim(line[colon+1:], " \t")
		if bytes.ContainsAny(value, "\x00\r") {
			return h, 0, errBadHeader
		}
		h.headers = append(h.headers, headerField{name: string(line[:colon]), value: string(value)})
	}
}

func (h *requestHead) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequestLine
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return errBadRequestLine
	}
	method, target, proto := line[:sp1], line[sp1+1:sp1+1+sp2], line[sp1+sp2+2:]
	if !isToken(method) || target[0] != '/' || !(bytes.Equal(proto, []byte("HTTP/1.1")) || bytes.Equal(proto, []byte("HTTP/1.0"))) {
		return errBadRequestLine
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return errBadRequestLine
		}
	}
	h.method = string(method)
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		h.path, h.rawQuery = string(target[:q]), string(target[q+1:])
	} else {
		h.path = string(target)
	}
	return nil
}

// nextLine splits off the first line of b without its CRLF or LF.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
