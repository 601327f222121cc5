package fanout

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A stream that reads several roots (topics under different roots, or topics and a client's own key)
// cannot use one root's event ID as its SSE id: a browser sends back only the last id it saw, and that
// would resume one root and lose the others. Its id is a cursor instead: its position in every root it
// reads, so the Last-Event-ID a browser sends by itself resumes them all. Single-root streams keep
// plain IDs, unchanged.
//
// Encoding (version 1): CursorPrefix, then base64url without padding of a sequence of entries, one per
// root, in the order of the roots' names:
//
//	hash  4 bytes, big-endian: the first 32 bits of FNV-1a of the root (the stream knows its roots from
//	      its URL, so the root need not be spelled out)
//	kind  uvarint: 0, no position (kept only where two of a stream's roots share a hash, or when a
//	      position did not fit the bound); 1, a numeric position "<ms>-<seq>" in canonical decimal, the
//	      form of every generated ID in memory and in Redis, followed by zigzag(ms - ms of the previous
//	      numeric entry, wrapping) and seq as uvarints, so roots published about the same time cost a few
//	      bytes; n+2, any other position (a publisher's own ID), its n bytes following.
//
// The prefix starts with '~', which no generated ID has and base64url never uses, so a plain ID sent
// back to a multi-root stream is told apart from a cursor (a publisher's own ID could begin so; it then
// fails to decode or names no root of the stream, and is treated as absent all the same).

// Cursor bounds.
const (
	// MaxCursorRoots is the most roots a cursor holds: MaxTopicsPerStream topics under distinct roots,
	// plus the client's own key.
	MaxCursorRoots = MaxTopicsPerStream + 1
	// CursorPrefix begins every cursor, with its version.
	CursorPrefix = "~1"
	// maxNumericEntry is the largest entry of a numeric position: hash, kind, two uvarints of 64 bits.
	maxNumericEntry = 4 + 1 + 2*binary.MaxVarintLen64
	// maxCursorBinary bounds a cursor's decoded form: MaxCursorRoots numeric entries of the largest
	// size always fit, and positions that are strings fit as long as they do (see CursorState.AppendTo).
	maxCursorBinary = MaxCursorRoots * maxNumericEntry
	// MaxCursorLen bounds an encoded cursor (2169 bytes): a longer Last-Event-ID is refused, not
	// decoded.
	MaxCursorLen = len(CursorPrefix) + (maxCursorBinary*4+2)/3
)

// Errors of DecodeCursor. An edge answers ErrCursorTooLong with a 400 and treats an ErrBadCursor (a
// foreign, legacy or corrupt id) as a cursor naming no root: each root absent, with a reset.
var (
	ErrCursorTooLong = errors.New("cursor too long")
	ErrBadCursor     = errors.New("bad cursor")
)

// Kinds of a cursor entry's position, as on the wire (see the encoding above).
const (
	posNone    = 0
	posNumeric = 1
	posString  = 2 // and above: 2 + the string's length on the wire
)

// slot is one root's entry: a CursorState's, or a decoded Cursor's (which knows the root by hash only).
type slot struct {
	root    string // "" in a decoded Cursor
	pos     string // the position, "" when none
	ms, seq uint64 // pos parsed, when kind is posNumeric
	hash    uint32
	kind    uint8
	always  bool // written even without a position, so entries sharing a hash keep their ranks
	dropped bool // AppendTo's scratch: a string position left out to keep within the bound
}

// set records pos, parsing it once here so that encoding, done for every event, does not. A position a
// cursor cannot carry (longer than MaxEventIDLen, or with a line break or NUL, which no valid event ID
// has) is recorded as none.
func (s *slot) set(pos string) {
	s.pos, s.kind, s.ms, s.seq = pos, posNone, 0, 0
	if ms, seq, ok := parseNumericID(pos); ok {
		s.kind, s.ms, s.seq = posNumeric, ms, seq
		return
	}
	if pos == "" || ValidateField("id", pos, MaxEventIDLen) != nil {
		s.pos = ""
		return
	}
	s.kind = posString
}

// size is the slot's encoded size after a numeric entry at prevMs, 0 when it is not written.
func (s *slot) size(prevMs uint64) int {
	switch {
	case s.kind == posNumeric:
		return 4 + 1 + uvarintLen(zigzag(s.ms-prevMs)) + uvarintLen(s.seq)
	case s.kind == posString && !s.dropped:
		return 4 + uvarintLen(uint64(len(s.pos))+posString) + len(s.pos)
	case s.always || s.kind == posString: // a dropped string still names its root: it gets a reset
		return 4 + 1
	}
	return 0
}

// appendTo appends the slot's entry (of size s.size(*prevMs)) to b, and moves prevMs past a numeric one.
func (s *slot) appendTo(b []byte, prevMs *uint64) []byte {
	if s.kind == posNone && !s.always {
		return b // as size: not written
	}
	b = binary.BigEndian.AppendUint32(b, s.hash)
	switch {
	case s.kind == posNumeric:
		b = append(b, posNumeric)
		b = binary.AppendUvarint(b, zigzag(s.ms-*prevMs))
		b = binary.AppendUvarint(b, s.seq)
		*prevMs = s.ms
	case s.kind == posString && !s.dropped:
		b = binary.AppendUvarint(b, uint64(len(s.pos))+posString)
		b = append(b, s.pos...)
	default:
		b = append(b, posNone)
	}
	return b
}

// appendCursor appends the encoding of slots to dst, leaving out string positions, longest first, as
// long as the entries are over maxCursorBinary (numeric ones always fit). It allocates nothing beyond
// dst's growth: the binary form is built on the stack.
func appendCursor(dst []byte, slots []slot) []byte {
	total, prev := 0, uint64(0)
	for i := range slots {
		s := &slots[i]
		s.dropped = false
		total += s.size(prev)
		if s.kind == posNumeric {
			prev = s.ms
		}
	}
	for total > maxCursorBinary {
		longest := -1
		for i := range slots {
			if s := &slots[i]; s.kind == posString && !s.dropped && (longest < 0 || len(s.pos) > len(slots[longest].pos)) {
				longest = i
			}
		}
		if longest < 0 {
			break // not reached: numeric and empty entries fit the bound by its definition
		}
		s := &slots[longest]
		before := s.size(0)
		s.dropped = true
		total -= before - s.size(0)
	}
	var buf [maxCursorBinary]byte
	b := buf[:0]
	prev = 0
	for i := range slots {
		b = slots[i].appendTo(b, &prev)
	}
	dst = append(dst, CursorPrefix...)
	return base64.RawURLEncoding.AppendEncode(dst, b)
}

// Cursor is a decoded cursor: positions by root hash. It is matched to a stream's roots by Positions.
type Cursor struct {
	entries []slot
}

// DecodeCursor decodes a Last-Event-ID sent to a multi-root stream. It fails with ErrCursorTooLong for
// input over MaxCursorLen, and with ErrBadCursor for anything that is not a cursor of this version, or
// is corrupt; it never panics.
func DecodeCursor(s string) (Cursor, error) {
	if len(s) > MaxCursorLen {
		return Cursor{}, fmt.Errorf("%w: %d bytes, over %d", ErrCursorTooLong, len(s), MaxCursorLen)
	}
	body, ok := strings.CutPrefix(s, CursorPrefix)
	if !ok {
		return Cursor{}, fmt.Errorf("%w: no %q prefix (a plain event id, or another version)", ErrBadCursor, CursorPrefix)
	}
	var buf [maxCursorBinary]byte
	b, err := base64.RawURLEncoding.AppendDecode(buf[:0], []byte(body))
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %w", ErrBadCursor, err)
	}
	c := Cursor{entries: make([]slot, 0, min(len(b)/5, MaxCursorRoots))}
	prev := uint64(0)
	for len(b) > 0 {
		if len(c.entries) == MaxCursorRoots {
			return Cursor{}, fmt.Errorf("%w: more than %d entries", ErrBadCursor, MaxCursorRoots)
		}
		if len(b) < 5 {
			return Cursor{}, fmt.Errorf("%w: truncated entry", ErrBadCursor)
		}
		e := slot{hash: binary.BigEndian.Uint32(b), always: true}
		kind, n := binary.Uvarint(b[4:])
		if n <= 0 {
			return Cursor{}, fmt.Errorf("%w: bad entry kind", ErrBadCursor)
		}
		b = b[4+n:]
		switch {
		case kind == posNone:
		case kind == posNumeric:
			d, n1 := binary.Uvarint(b)
			if n1 <= 0 {
				return Cursor{}, fmt.Errorf("%w: bad position", ErrBadCursor)
			}
			seq, n2 := binary.Uvarint(b[n1:])
			if n2 <= 0 {
				return Cursor{}, fmt.Errorf("%w: bad position", ErrBadCursor)
			}
			b = b[n1+n2:]
			e.kind, e.ms, e.seq = posNumeric, prev+unzigzag(d), seq
			prev = e.ms
			var p [41]byte
			e.pos = string(strconv.AppendUint(append(strconv.AppendUint(p[:0], e.ms, 10), '-'), e.seq, 10))
		case kind > posString && kind-posString <= MaxEventIDLen && kind-posString <= uint64(len(b)):
			e.kind, e.pos = posString, string(b[:kind-posString])
			b = b[kind-posString:]
			if _, _, numeric := parseNumericID(e.pos); numeric || ValidateField("id", e.pos, MaxEventIDLen) != nil {
				return Cursor{}, fmt.Errorf("%w: bad string position", ErrBadCursor)
			}
		default:
			return Cursor{}, fmt.Errorf("%w: bad entry kind %d", ErrBadCursor, kind)
		}
		c.entries = append(c.entries, e)
	}
	return c, nil
}

// Len is the number of entries in c.
func (c Cursor) Len() int { return len(c.entries) }

// Positions returns the position c holds for each of roots (sorted and distinct, as a CursorState's),
// "" where it holds none: the root is absent (the stream did not read it then, or the cursor could not
// carry its position). Entries naming none of roots are ignored. Where two roots share a hash, the k-th
// entry with that hash is the k-th such root in name order, as CursorState writes them.
func (c Cursor) Positions(roots []string) []string {
	out := make([]string, len(roots))
	hashes := make([]uint32, len(roots))
	for i, r := range roots {
		hashes[i] = rootHash(r)
	}
	for i, h := range hashes {
		rank := 0
		for _, o := range hashes[:i] {
			if o == h {
				rank++
			}
		}
		for _, e := range c.entries {
			if e.hash != h {
				continue
			}
			if rank == 0 {
				out[i] = e.pos
				break
			}
			rank--
		}
	}
	return out
}

// String encodes c again: its entries, in their order.
func (c Cursor) String() string { return string(appendCursor(nil, c.entries)) }
