package fanout

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// CursorState is a multi-root stream's cursor: its position in each of its roots, kept as events arrive
// and encoded for each one (AppendTo). It is built once per stream; it is not safe for concurrent use
// (the stream's own lock guards it). A slot is the index of a root in the roots it was built with.
type CursorState struct {
	slots []slot
}

// NewCursorState returns the cursor of a stream reading roots, which must be sorted and distinct (as
// Roots returns them), at most MaxCursorRoots, with no position yet in any.
func NewCursorState(roots []string) (*CursorState, error) {
	if len(roots) > MaxCursorRoots {
		return nil, fmt.Errorf("%w: %d roots, at most %d", ErrTooManyTopics, len(roots), MaxCursorRoots)
	}
	cs := &CursorState{slots: make([]slot, len(roots))}
	for i, r := range roots {
		if r == "" || i > 0 && r <= roots[i-1] {
			return nil, fmt.Errorf("cursor roots must be non-empty, sorted and distinct: %q", roots)
		}
		cs.slots[i] = slot{root: r, hash: rootHash(r)}
	}
	// Roots sharing a hash are always written, so that a decoder can tell them apart by rank.
	for i := range cs.slots {
		for j := range cs.slots[:i] {
			if cs.slots[i].hash == cs.slots[j].hash {
				cs.slots[i].always, cs.slots[j].always = true, true
			}
		}
	}
	return cs, nil
}

// Len is the number of roots (slots).
func (cs *CursorState) Len() int { return len(cs.slots) }

// Root is the root of slot i.
func (cs *CursorState) Root(i int) string { return cs.slots[i].root }

// Slot returns the slot of root, and false when the stream does not read it.
func (cs *CursorState) Slot(root string) (int, bool) {
	return slices.BinarySearchFunc(cs.slots, root, func(s slot, r string) int { return strings.Compare(s.root, r) })
}

// Set records pos, the ID of the last event the stream got from slot i's root ("" for none). It parses
// pos once, so that AppendTo does not.
func (cs *CursorState) Set(i int, pos string) { cs.slots[i].set(pos) }

// Pos is slot i's position, "" when it has none (or one a cursor cannot carry).
func (cs *CursorState) Pos(i int) string { return cs.slots[i].pos }

// Load sets every slot from c (its position there, or none) and returns how many slots it found.
func (cs *CursorState) Load(c Cursor) (found int) {
	roots := make([]string, len(cs.slots))
	for i := range cs.slots {
		roots[i] = cs.slots[i].root
	}
	for i, p := range c.Positions(roots) {
		cs.slots[i].set(p)
		if p != "" {
			found++
		}
	}
	return found
}

// With returns the cursor of the same stream reading roots instead (sorted and distinct), keeping the
// positions of the roots it still reads: for a stream whose subscriptions change while it is held.
func (cs *CursorState) With(roots []string) (*CursorState, error) {
	next, err := NewCursorState(roots)
	if err != nil {
		return nil, err
	}
	for i := range next.slots {
		if j, ok := cs.Slot(next.slots[i].root); ok {
			next.slots[i].set(cs.slots[j].pos)
		}
	}
	return next, nil
}

// AppendTo appends the encoded cursor to dst (at most MaxCursorLen bytes) and allocates nothing beyond
// dst's growth. When a publisher's own IDs, longer than generated ones, would take it over the bound,
// the longest are left out (each such root then decodes as absent, and resumes with a reset); generated
// IDs always fit.
func (cs *CursorState) AppendTo(dst []byte) []byte { return appendCursor(dst, cs.slots) }

// String is the encoded cursor.
func (cs *CursorState) String() string { return string(cs.AppendTo(nil)) }

// AppendFrame appends f with the cursor as its id: f.Reid(dst, cs.String()) without building the id
// apart, so it allocates nothing beyond dst's growth. It is what a multi-root stream writes for each
// event, once Set has moved the event's root.
func (cs *CursorState) AppendFrame(dst []byte, f *Frame) []byte {
	dst = append(dst, "id: "...)
	dst = cs.AppendTo(dst)
	dst = append(dst, '\n')
	return append(dst, f.withoutID()...)
}

// AppendIDOnly appends an event that carries only an id: it moves a client's last event ID (what it sends
// back as Last-Event-ID) without delivering anything. In the HTML standard's "dispatch the event" steps
// (server-sent events, interpreting an event stream), the event source's last event ID string is set
// from the id buffer first, and only then, when the data buffer is empty, the steps return without
// firing an event; so an EventSource updates lastEventId and fires no message. A multi-root stream can
// use it when its position moves without an event to send (a root reset to its current end).
func AppendIDOnly(dst []byte, id string) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	return append(dst, "\n\n"...)
}

// rootHash identifies a root in a cursor: the first 32 bits of FNV-1a.
func rootHash(root string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(root); i++ {
		h ^= uint32(root[i])
		h *= 16777619
	}
	return h
}

// parseNumericID parses a position of the generated form "<ms>-<seq>", both in canonical decimal (no
// sign, no leading zero), so that formatting the numbers gives the same string back.
func parseNumericID(s string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	if ms, ok = parseCanonicalUint(a); !ok {
		return 0, 0, false
	}
	if seq, ok = parseCanonicalUint(b); !ok {
		return 0, 0, false
	}
	return ms, seq, true
}

func parseCanonicalUint(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' || len(s) > 20 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func zigzag(d uint64) uint64   { return d<<1 ^ uint64(int64(d)>>63) }
func unzigzag(z uint64) uint64 { return z>>1 ^ -(z & 1) }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// RootReplay is what one of a stream's subscriptions replays on resume: the frames after its root's
// position, in that root's order. Root names the cursor slot they move.
type RootReplay struct {
	Root   string
	Frames []*Frame
}

// Merged is one frame of a merged replay, and the index of the RootReplay it came from (so the stream
// knows which cursor slot it moves).
type Merged struct {
	Frame *Frame
	From  int
}

// MergeReplays merges the replays of a multi-root stream into publish order, each replay's own order
// kept: two frames with numeric IDs ("<ms>-<seq>": generated, in memory one hub-wide sequence, with Redis
// a stream ID) compare as (ms, seq), any other two by Frame.At; ties keep the order of the replays given.
// A frame appears once: replays of the same root (two topics under it) drop a repeated frame pointer or
// a repeated numeric ID, which is unique within a root; replays of different roots never share a frame,
// since a frame is kept only under its own root. A publisher's own IDs may repeat within a root, so two
// distinct frames with the same such ID are both kept.
func MergeReplays(replays ...RootReplay) []Merged {
	type head struct {
		next    int // index of the next frame
		ms, seq uint64
		numeric bool
	}
	total := 0
	heads := make([]head, len(replays))
	load := func(i int) {
		h := &heads[i]
		if fs := replays[i].Frames; h.next < len(fs) {
			h.ms, h.seq, h.numeric = parseNumericID(fs[h.next].ID)
		}
	}
	var seen map[any]struct{} // only when a root has more than one replay
	for i, r := range replays {
		total += len(r.Frames)
		load(i)
		for _, o := range replays[:i] {
			if o.Root == r.Root && seen == nil {
				seen = make(map[any]struct{})
			}
		}
	}
	type rootID struct{ root, id string }
	out := make([]Merged, 0, total)
	for {
		best := -1
		for i := range heads {
			if heads[i].next >= len(replays[i].Frames) {
				continue
			}
			if best < 0 || replayBefore(replays[i].Frames[heads[i].next], heads[i].ms, heads[i].seq, heads[i].numeric,
				replays[best].Frames[heads[best].next], heads[best].ms, heads[best].seq, heads[best].numeric) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		f := replays[best].Frames[heads[best].next]
		numeric := heads[best].numeric
		heads[best].next++
		load(best)
		if seen != nil {
			var k any = f
			if numeric {
				k = rootID{replays[best].Root, f.ID}
			}
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			seen[f] = struct{}{}
		}
		out = append(out, Merged{Frame: f, From: best})
	}
}

// replayBefore reports whether frame a (with its ID parsed) was published strictly before frame b.
func replayBefore(a *Frame, ams, aseq uint64, anum bool, b *Frame, bms, bseq uint64, bnum bool) bool {
	if anum && bnum {
		return ams < bms || ams == bms && aseq < bseq
	}
	return a.At.Before(b.At)
}
