package fanout

// history is a bounded ring of the frames last published to one stream, oldest first. It grows on demand
// up to its size, so a stream that sees few events costs few bytes. Its counters are 32 bits (a history
// holds at most HistorySize frames), which keeps a stream's node in a 64-byte size class.
type history struct {
	buf   []*Frame
	start int32 // index of the oldest frame in buf
	n     int32
}

// len is the number of frames held.
func (h *history) len() int { return int(h.n) }

// push appends f, growing the ring up to size frames. A full ring overwrites its oldest frame and
// returns it, so the caller can account for it.
func (h *history) push(f *Frame, size int) (overwritten *Frame) {
	if size <= 0 {
		return nil
	}
	if int(h.n) < len(h.buf) {
		h.buf[(int(h.start)+int(h.n))%len(h.buf)] = f
		h.n++
		return nil
	}
	if len(h.buf) < size { // grow: unroll the ring into a larger slice
		grown := make([]*Frame, min(size, max(4, 2*len(h.buf))))
		for i := range int(h.n) {
			grown[i] = h.at(i)
		}
		h.buf, h.start = grown, 0
		h.buf[h.n] = f
		h.n++
		return nil
	}
	overwritten = h.buf[h.start] // full: overwrite the oldest
	h.buf[h.start] = f
	h.start = int32((int(h.start) + 1) % len(h.buf))
	return overwritten
}

func (h *history) at(i int) *Frame { return h.buf[(int(h.start)+i)%len(h.buf)] }

// pop removes and returns the oldest frame. A history left empty lets go of its ring, so a stream that
// keeps nothing costs nothing here.
func (h *history) pop() *Frame {
	f := h.buf[h.start]
	h.buf[h.start] = nil
	h.start = int32((int(h.start) + 1) % len(h.buf))
	h.n--
	if h.n == 0 {
		h.buf, h.start = nil, 0
	}
	return f
}

// footprint is what the history costs beyond its frames, as a Budget counts it: its ring and, while it
// holds anything, its stream (the node, its map slot and key), which exists for the history alone when
// nobody subscribes.
func (h *history) footprint() int64 {
	if h.n == 0 {
		return 0
	}
	return streamOverhead + 8*int64(cap(h.buf))
}

// since returns the index of the first frame after the one with id, searching from the newest, and false
// when id is not retained.
func (h *history) since(id string) (int, bool) {
	for i := int(h.n) - 1; i >= 0; i-- {
		if h.at(i).ID == id {
			return i + 1, true
		}
	}
	return 0, false
}
