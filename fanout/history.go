package fanout

import "time"

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

func (h *history) push(f *Frame, size int) {
	if size <= 0 {
		return
	}
	if int(h.n) < len(h.buf) {
		h.buf[(int(h.start)+int(h.n))%len(h.buf)] = f
		h.n++
		return
	}
	if len(h.buf) < size { // grow: unroll the ring into a larger slice
		grown := make([]*Frame, min(size, max(4, 2*len(h.buf))))
		for i := range int(h.n) {
			grown[i] = h.at(i)
		}
		h.buf, h.start = grown, 0
		h.buf[h.n] = f
		h.n++
		return
	}
	h.buf[h.start] = f // full: overwrite the oldest
	h.start = int32((int(h.start) + 1) % len(h.buf))
}

func (h *history) at(i int) *Frame { return h.buf[(int(h.start)+i)%len(h.buf)] }

// expire drops frames published before cutoff and reports whether the history is now empty.
func (h *history) expire(cutoff time.Time) bool {
	for h.n > 0 && h.at(0).At.Before(cutoff) {
		h.buf[h.start] = nil
		h.start = int32((int(h.start) + 1) % len(h.buf))
		h.n--
	}
	if h.n == 0 {
		h.buf, h.start = nil, 0
	}
	return h.n == 0
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
