package edge

import (
	"errors"
	"sync"
	"syscall"
	"unsafe"

	"github.com/sseedge/sseedge/fanout"
)

// maxIovecs bounds one writev call (IOV_MAX on Linux is 1024).
const maxIovecs = 1024

// runQueue holds the streams that have frames to write, first in first out so that none starves under
// sustained load. A stream is in it at most once (its writing flag says so), so it never holds more
// entries than there are streams.
type runQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []*stream
	head   int // items[head:] are queued
	closed bool
}

func newRunQueue() *runQueue {
	q := &runQueue{}
	q.cond.L = &q.mu
	return q
}

func (q *runQueue) push(s *stream) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop moves up to cap(batch) streams into batch, oldest first, waiting while there are none; it returns
// false once the queue is closed and drained.
func (q *runQueue) pop(batch []*stream) ([]*stream, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) {
		if q.closed {
			return batch[:0], false
		}
		q.cond.Wait()
	}
	k := min(cap(batch), len(q.items)-q.head)
	taken := q.items[q.head : q.head+k]
	batch = append(batch[:0], taken...)
	clear(taken)
	q.head += k
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head > len(q.items)/2: // compact, so a queue that never empties does not grow without bound
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return batch, true
}

func (q *runQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// writer is one of the few goroutines that write frames to sockets. It only ever makes non-blocking
// writes; a stream whose socket is full is handed to a goroutine of its own (see stream.drainBlocking),
// so a stalled client never delays any other.
type writer struct {
	iov    []syscall.Iovec
	srv    *Server
	bytes  uint64 // written since the last batch, added to the server's counter once per batch
	frames uint64 // frames completed since the last batch, likewise
}

func (w *writer) run(q *runQueue) {
	w.iov = make([]syscall.Iovec, 0, maxIovecs)
	batch := make([]*stream, 0, 64)
	for {
		var ok bool
		batch, ok = q.pop(batch)
		if !ok {
			return
		}
		for i, s := range batch {
			s.flush(w)
			batch[i] = nil
		}
		if w.bytes > 0 {
			w.srv.framesBytes.Add(w.bytes) // shared cache lines touched once per batch, not per write
			w.srv.framesSent.Add(w.frames)
			w.bytes, w.frames = 0, 0
		}
	}
}

// record accounts for n bytes written to one stream, completing done frames; oldest was the first frame
// written, whose publish time gives the delivery latency.
func (w *writer) record(n, done int, oldest *fanout.Frame) {
	w.bytes += uint64(n)
	w.frames += uint64(done)
	observeWrite(w.srv.cfg.Metrics, n, done, oldest)
}

// writev writes frames, the first from offset off, to fd without blocking, and returns how many bytes
// the kernel took. A full socket answers syscall.EAGAIN.
func (w *writer) writev(fd int, frames []*fanout.Frame, off int) (int, error) {
	iov := w.iov[:0]
	for i, f := range frames {
		b := f.Bytes
		if i == 0 {
			b = b[off:]
		}
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		iov = append(iov, syscall.Iovec{Base: &b[0], Len: uint64(len(b))})
	}
	if len(iov) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	for {
		n, _, errno = syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if errno != syscall.EINTR {
			break
		}
	}
	clear(iov) // drop the pointers so the scratch slice keeps no frame alive
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// isWouldBlock reports a full socket.
func isWouldBlock(err error) bool {
	return errors.Is(err, syscall.EAGAIN)
}
