package main

import (
	"bytes"
	"errors"
	"math"
)

// Event is one dispatched server-sent event. Its slices alias the parser's buffers: they are valid only
// during the OnEvent call that receives them.
type Event struct {
	// ID is the stream's last event ID at dispatch; as in WHATWG, it persists across events until an
	// "id" field changes it.
	ID []byte
	// Type is the "event" field; empty means "message".
	Type []byte
	// Data is the data lines of the event joined with "\n".
	Data []byte
}

// EventHandler receives the events a Parser dispatches. Event is passed by value so that handing it
// through the interface does not allocate.
type EventHandler interface {
	OnEvent(ev Event)
}

// ErrLineTooLong is returned by Parser.Feed when a line exceeds the parser's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// maxLine bounds a buffered partial line so a broken server cannot make the client grow without bound.
const maxLine = 1 << 20

// bom is the byte order mark a stream may start with.
const bom = "\xEF\xBB\xBF"

// Parser is an incremental parser of the text/event-stream format as WHATWG specifies it: lines end in
// LF, CRLF or CR (a CRLF split across two Feed calls counts once), a leading BOM is skipped, lines
// starting with ':' are comments, "field: value" loses one space after the colon, data lines are joined
// with LF, a blank line dispatches the event unless no data field was seen, "id" values containing NUL
// are ignored, and an incomplete event at end of stream is never dispatched.
//
// The zero value is ready. It keeps its buffers between events, so a steady stream of frames costs no
// allocation; a line is copied only when it straddles two Feed calls.
type Parser struct {
	line    []byte // partial line carried over from the previous Feed
	data    []byte
	typ     []byte
	id      []byte
	retry   int64 // last valid retry value in ms, 0 if none
	hasData bool  // a data field was seen since the last dispatch
	skipLF  bool  // the previous Feed ended in CR, so a leading LF ends no line
	started bool  // the first line (which may carry a BOM) has been processed
}

// Retry returns the last reconnection time hint in milliseconds, or 0 when the server sent none.
func (p *Parser) Retry() int64 { return p.retry }

// Feed parses the next bytes of the stream, calling h for every event completed by them.
func (p *Parser) Feed(b []byte, h EventHandler) error {
	for len(b) > 0 {
		if p.skipLF {
			p.skipLF = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := indexEOL(b)
		if i < 0 {
			if len(p.line)+len(b) > maxLine {
				return ErrLineTooLong
			}
			p.line = append(p.line, b...)
			return nil
		}
		line := b[:i]
		if len(p.line) > 0 {
			if len(p.line)+i > maxLine {
				return ErrLineTooLong
			}
			p.line = append(p.line, line...)
			line = p.line
		}
		if b[i] == '\r' {
			if i+1 == len(b) {
				p.skipLF = true
			} else if b[i+1] == '\n' {
				i++
			}
		}
		b = b[i+1:]
		p.processLine(line, h)
		p.line = p.line[:0]
	}
	return nil
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

func (p *Parser) processLine(line []byte, h EventHandler) {
	if !p.started {
		p.started = true
		line = bytes.TrimPrefix(line, []byte(bom))
	}
	if len(line) == 0 {
		p.dispatch(h)
		return
	}
	if line[0] == ':' {
		return
	}
	field, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		field, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "event":
		p.typ = append(p.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id = append(p.id[:0], value...)
		}
	case "retry":
		if n, ok := parseDigits(value); ok {
			p.retry = n
		}
	}
}

func (p *Parser) dispatch(h EventHandler) {
	if p.hasData {
		h.OnEvent(Event{ID: p.id, Type: p.typ, Data: p.data})
	}
	p.data = p.data[:0]
	p.typ = p.typ[:0]
	p.hasData = false
}

// parseDigits parses a non-empty run of ASCII digits into an int64; anything else, or a value that
// overflows, is not a number.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
