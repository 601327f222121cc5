package main

import (
	"bytes"
	"errors"
	"fmt"
)

// Stream phases.
const (
	phaseHead uint8 = iota // waiting for the complete response head
	phaseBody              // head was 200 text/event-stream; body bytes go to the SSE parser
	phaseDone              // failed, ended by the server, or closed by us
)

// Chunked transfer-coding decoder states.
const (
	chunkSize    uint8 = iota // hex digits of the next chunk size
	chunkExt                  // chunk extension, skipped up to LF
	chunkData                 // chunkRem bytes of data
	chunkDataEnd              // the CRLF after chunk data
	chunkTrailer              // after the last chunk: the stream is over
)

const maxHead = 16 << 10

var (
	errStreamEnded = errors.New("server ended the stream")
	errBadHead     = errors.New("malformed response head")
	errBadChunk    = errors.New("malformed chunked encoding")
)

// statusError is a response head whose status or content type is not that of an event stream.
type statusError struct {
	status int
	ctype  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("response %d %q, want 200 text/event-stream", e.status, e.ctype)
}

// stream is the client side of one SSE response read off a raw socket: it parses the HTTP/1.1 response
// head, undoes the chunked transfer coding net/http servers use for unbounded bodies (or passes a raw
// body through), and feeds the body to an SSE Parser. It is small (about 150 bytes) and allocates only
// for a head or line that straddles two reads, so that the load client, not the server, is never the
// memory or CPU story of a run. Each stream is owned by one goroutine at a time.
type stream struct {
	sse      Parser
	head     []byte // partial response head carried across reads
	chunkRem int64
	events   uint32 // counted events received (see collector)
	status   int16
	phase    uint8
	chunkSt  uint8
	chunked  bool
	probed   bool // a probe event has arrived (see fanout)
	body     bool // at least one body byte has arrived
}

// feed consumes bytes read from the socket. It returns errStreamEnded when the server ended the body,
// a *statusError for a non-SSE response, or another error for a protocol violation.
func (s *stream) feed(b []byte, h EventHandler) error {
	if s.phase == phaseHead {
		rest, err := s.feedHead(b)
		if err != nil || s.phase == phaseHead {
			return err
		}
		b = rest
	}
	if s.phase != phaseBody || len(b) == 0 {
		return nil
	}
	s.body = true
	if !s.chunked {
		return s.sse.Feed(b, h)
	}
	return s.feedChunked(b, h)
}

// feedHead accumulates the head; once complete it parses it and returns the body bytes that followed.
func (s *stream) feedHead(b []byte) ([]byte, error) {
	var head, rest []byte
	if len(s.head) == 0 {
		end := headEnd(b)
		if end < 0 {
			if len(b) > maxHead {
				return nil, errBadHead
			}
			s.head = append(s.head, b...)
			return nil, nil
		}
		head, rest = b[:end], b[end:]
	} else {
		prev := len(s.head)
		s.head = append(s.head, b...)
		end := headEnd(s.head)
		if end < 0 {
			if len(s.head) > maxHead {
				return nil, errBadHead
			}
			return nil, nil
		}
		head, rest = s.head[:end], b[end-prev:]
	}
	if err := s.parseHead(head); err != nil {
		return nil, err
	}
	s.head = nil
	s.phase = phaseBody
	return rest, nil
}

// headEnd returns the index just past the blank line ending a response head, or -1.
func headEnd(b []byte) int {
	end := -1
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 && (end < 0 || i+2 < end) {
		end = i + 2
	}
	return end
}

func (s *stream) parseHead(head []byte) error {
	line, rest, _ := bytes.Cut(head, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return fmt.Errorf("%w: status line %q", errBadHead, line)
	}
	status, ok := parseDigits(line[9:12])
	if !ok {
		return fmt.Errorf("%w: status line %q", errBadHead, line)
	}
	s.status = int16(status)
	var ctype []byte
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, value, ok := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			s.chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Content-Type")):
			ctype = value
		}
	}
	if status != 200 || !bytes.HasPrefix(bytes.ToLower(ctype), []byte("text/event-stream")) {
		return &statusError{status: int(status), ctype: string(ctype)}
	}
	return nil
}

func (s *stream) feedChunked(b []byte, h EventHandler) error {
	for len(b) > 0 {
		switch s.chunkSt {
		case chunkData:
			n := int(min(s.chunkRem, int64(len(b))))
			if err := s.sse.Feed(b[:n], h); err != nil {
				return err
			}
			b = b[n:]
			if s.chunkRem -= int64(n); s.chunkRem == 0 {
				s.chunkSt = chunkDataEnd
			}
			continue
		case chunkTrailer:
			return errStreamEnded
		}
		c := b[0]
		b = b[1:]
		switch s.chunkSt {
		case chunkSize:
			switch {
			case c >= '0' && c <= '9':
				s.chunkRem = s.chunkRem<<4 | int64(c-'0')
			case c >= 'a' && c <= 'f':
				s.chunkRem = s.chunkRem<<4 | int64(c-'a'+10)
			case c >= 'A' && c <= 'F':
				s.chunkRem = s.chunkRem<<4 | int64(c-'A'+10)
			case c == ';' || c == ' ' || c == '\t':
				s.chunkSt = chunkExt
			case c == '\r':
			case c == '\n':
				s.endSizeLine()
			default:
				return fmt.Errorf("%w: byte %q in chunk size", errBadChunk, c)
			}
			if s.chunkRem > 1<<40 {
				return fmt.Errorf("%w: chunk too large", errBadChunk)
			}
		case chunkExt:
			if c == '\n' {
				s.endSizeLine()
			}
		case chunkDataEnd:
			switch c {
			case '\r':
			case '\n':
				s.chunkSt = chunkSize
			default:
				return fmt.Errorf("%w: byte %q after chunk data", errBadChunk, c)
			}
		}
	}
	if s.chunkSt == chunkTrailer {
		return errStreamEnded
	}
	return nil
}

func (s *stream) endSizeLine() {
	if s.chunkRem == 0 {
		s.chunkSt = chunkTrailer
		return
	}
	s.chunkSt = chunkData
}
