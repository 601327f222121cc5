// Package floorsrv is the floor of the sseedge load tests: a server that does as little as the kernel
// allows per delivery, to show what this machine and load client permit whatever the server. A stream
// is its socket and nothing else (no goroutine, queue, heartbeat or topic routing: every stream gets
// every publish), and a publish writes the encoded frame to every socket with one plain write each,
// spread over one goroutine per core. No real server can deliver faster here; what sseedge measures
// against it is the cost of being a real server.
//
// It is only for the fanout loads: it never reads a stream again after its head, so closed streams are
// noticed only when a write fails, and a socket whose buffer is full loses the frame (counted in
// Stats.Dropped; the load generator then reports it missing).
package floorsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sseedge/sseedge/loadtest/internal/basesrv"
)

// stream is one held socket: its descriptor, and the connection that owns it (kept so it is not
// collected and closed).
type stream struct {
	fd   int
	conn net.Conn
}

// Server is the floor server. Create it with New.
type Server struct {
	mux *http.ServeMux

	mu      sync.Mutex
	streams []stream
	// writing is held by one publish at a time while it writes: they would only share the cores, and a
	// stream that one publish closes is never written by another.
	writing sync.Mutex

	nextID    atomic.Uint64
	published atomic.Int64
	delivered atomic.Int64
	dropped   atomic.Int64
}

// streamHead is the response head of every stream, with the retry hint of the other servers.
const streamHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\n\r\nretry: 3000\n\n"

// New returns a Server; debugVars, when non-nil, is served at GET /debug/vars.
func New(debugVars http.Handler) *Server {
	s := &Server{}
	s.mux = basesrv.Routes(s.subscribe, s.publish, debugVars)
	return s
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() basesrv.Stats {
	s.mu.Lock()
	n := len(s.streams)
	s.mu.Unlock()
	return basesrv.Stats{Subscribers: int64(n), Published: s.published.Load(), Delivered: s.delivered.Load(), Dropped: s.dropped.Load()}
}

// subscribe takes the connection from net/http, writes the head and keeps only the socket.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		basesrv.WriteError(w, http.StatusInternalServerError, "no_hijack", err.Error())
		return
	}
	if _, err := io.WriteString(conn, streamHead); err != nil {
		conn.Close()
		return
	}
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		conn.Close()
		return
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		conn.Close()
		return
	}
	s.mu.Lock()
	s.streams = append(s.streams, stream{fd: fd, conn: conn})
	s.mu.Unlock()
}

// publish encodes the frame once and writes it to every socket before it answers.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		basesrv.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return
	}
	ev, err := basesrv.ParseEvent(raw)
	if err != nil {
		basesrv.WriteError(w, http.StatusBadRequest, "bad_event", err.Error())
		return
	}
	if ev.ID == "" {
		ev.ID = strconv.FormatUint(s.nextID.Add(1), 10)
	}
	frame := basesrv.EncodeFrame(nil, ev.ID, ev.Event, ev.Data)
	s.published.Add(1)

	s.writing.Lock()
	defer s.writing.Unlock()
	s.mu.Lock()
	streams := s.streams[:len(s.streams):len(s.streams)] // appends after this do not touch our view
	s.mu.Unlock()
	parts := min(runtime.GOMAXPROCS(0), max(1, len(streams)))
	failed := make([][]int, parts)
	var wg sync.WaitGroup
	for p := range parts {
		part := streams[p*len(streams)/parts : (p+1)*len(streams)/parts]
		wg.Go(func() { failed[p] = s.write(part, frame) })
	}
	wg.Wait()
	s.forget(failed)

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		ID string `json:"id"`
	}{ev.ID})
}

// write sends frame to each stream with one write call and returns the descriptors of the streams that
// are gone. The sockets are non-blocking (net/http made them so), so a full one answers EAGAIN and loses
// the frame.
func (s *Server) write(streams []stream, frame []byte) (gone []int) {
	var delivered, dropped int64
	for _, st := range streams {
		n, err := syscall.Write(st.fd, frame)
		for errors.Is(err, syscall.EINTR) {
			n, err = syscall.Write(st.fd, frame)
		}
		switch {
		case err == nil && n == len(frame):
			delivered++
		case err == nil || errors.Is(err, syscall.EAGAIN):
			dropped++
		default:
			dropped++
			gone = append(gone, st.fd)
		}
	}
	s.delivered.Add(delivered)
	s.dropped.Add(dropped)
	return gone
}

// forget closes and removes the streams whose writes failed, so a long-running floor server does not
// keep the descriptors of earlier runs.
func (s *Server) forget(gone [][]int) {
	dead := map[int]bool{}
	for _, fds := range gone {
		for _, fd := range fds {
			dead[fd] = true
		}
	}
	if len(dead) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := make([]stream, 0, len(s.streams))
	for _, st := range s.streams {
		if dead[st.fd] {
			st.conn.Close()
			continue
		}
		kept = append(kept, st)
	}
	s.streams = kept
}

// Serve runs the server on ln until ctx ends, then closes the listener and every held stream.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		shutCtx, done := context.WithTimeout(context.Background(), time.Second)
		defer done()
		e := srv.Shutdown(shutCtx)
		if errors.Is(e, context.DeadlineExceeded) {
			// A connection a client dialed but never sent a request on (net/http's transport dials
			// spares) keeps Shutdown waiting for 5 s; it holds no request, so close it.
			e = srv.Close()
		}
		if e != nil {
			err = fmt.Errorf("shutdown: %w", e)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.streams {
		st.conn.Close()
	}
	s.streams = nil
	return err
}
