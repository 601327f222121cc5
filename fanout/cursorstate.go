package fanout

import (
	"fmt"
	"slices"
	"strings"
)

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
