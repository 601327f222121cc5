// Package basesrv is the comparison point for the sseedge load tests: the SSE server a typical Go
// developer writes with net/http. Every stream is a handler goroutine that owns a buffered channel, a
// heartbeat ticker and net/http's per-connection bufio buffers, and writes and flushes one frame at a
// time. It speaks the same contract as sseedge for the parts the load tests touch (hierarchical
// /subscribe and /publish, the frame format, JSON errors, /debug/vars), so both servers can be driven by
// the same load generator in the same run.
//
// Slow consumers: when a subscriber's channel is full the event is DROPPED for that subscriber (a
// non-blocking send, the usual idiom) and counted in Stats.Dropped; the connection stays open. A load run
// that sees missing deliveries against this server should check that counter.
package basesrv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Server. The zero value is usable.
type Config struct {
	// Buffer is the capacity of each subscriber's channel (default 64).
	Buffer int
	// Heartbeat is the interval of the per-connection heartbeat event (default 15s; negative disables).
	Heartbeat time.Duration
	// Retry is the reconnection hint in milliseconds sent as the first bytes of every stream (default 3000).
	Retry int
}

// Stats are the server's counters, published under /debug/vars by the baseline binary (the floor
// server's too).
type Stats struct {
	Subscribers int64 `json:"subscribers"`
	Published   int64 `json:"published"`
	Delivered   int64 `json:"delivered"`
	Dropped     int64 `json:"dropped"`
}

// Server is a goroutine-per-connection SSE server. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu     sync.RWMutex
	topics map[string]map[*subscriber]struct{}

	nextID      atomic.Uint64
	subscribers atomic.Int64
	published   atomic.Int64
	delivered   atomic.Int64
	dropped     atomic.Int64
}

type subscriber struct {
	ch chan []byte
}

// New returns a Server whose routes are mounted on Handler. debugVars, when non-nil, is served at
// GET /debug/vars (pass expvar.Handler()); the server itself keeps no global state.
func New(cfg Config, debugVars http.Handler) *Server {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 64
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 3000
	}
	s := &Server{cfg: cfg, topics: make(map[string]map[*subscriber]struct{})}
	s.mux = Routes(s.subscribe, s.publish, debugVars)
	return s
}

// Routes is the mux of the contract the load tests drive: GET /subscribe/{topic...}, POST
// /publish/{topic...} and, when debugVars is not nil, GET /debug/vars.
func Routes(subscribe, publish http.HandlerFunc, debugVars http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /subscribe/{topic...}", subscribe)
	mux.HandleFunc("POST /publish/{topic...}", publish)
	if debugVars != nil {
		mux.Handle("GET /debug/vars", debugVars)
	}
	return mux
}

// Handler returns the HTTP handler of all routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Subscribers: s.subscribers.Load(),
		Published:   s.published.Load(),
		Delivered:   s.delivered.Load(),
		Dropped:     s.dropped.Load(),
	}
}

// normalizeTopic turns a path tail such as "pets/dogs/" into "pets/dogs"; it refuses empty topics and
// empty, "." or ".." segments so that the ancestor walk of publish is well defined.
func normalizeTopic(raw string) (string, error) {
	t := strings.Trim(raw, "/")
	if t == "" {
		return "", errors.New("topic is empty")
	}
	for seg := range strings.SplitSeq(t, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("topic %q has an empty or relative segment", raw)
		}
	}
	return t, nil
}

// WriteError answers with the JSON error body of the contract.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
}

func (s *Server) add(topic string, sub *subscriber) {
	s.mu.Lock()
	set := s.topics[topic]
	if set == nil {
		set = make(map[*subscriber]struct{})
		s.topics[topic] = set
	}
	set[sub] = struct{}{}
	s.mu.Unlock()
	s.subscribers.Add(1)
}

func (s *Server) remove(topic string, sub *subscriber) {
	s.mu.Lock()
	if set := s.topics[topic]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(s.topics, topic)
		}
	}
	s.mu.Unlock()
	s.subscribers.Add(-1)
}

// subscribe holds one stream: it registers before sending the response head, so that a client which has
// seen the head is guaranteed to receive every later publish.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	topic, err := normalizeTopic(r.PathValue("topic"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_topic", err.Error())
		return
	}
	rc := http.NewResponseController(w)
	sub := &subscriber{ch: make(chan []byte, s.cfg.Buffer)}
	s.add(topic, sub)
	defer s.remove(topic, sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", s.cfg.Retry); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}

	var tick <-chan time.Time
	if s.cfg.Heartbeat > 0 {
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case frame := <-sub.ch:
			if _, err := w.Write(frame); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			s.delivered.Add(1)
		case now := <-tick:
			if _, err := fmt.Fprintf(w, "event: heartbeat\ndata: %d\n\n", now.Unix()); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// Event is a decoded publish body: its data already turned into the text of the data lines.
type Event struct {
	ID, Event string
	Data      []byte
}

// ParseEvent decodes the body of POST /publish/{topic...}: {"event", "data", "id"?}.
func ParseEvent(raw []byte) (Event, error) {
	var body struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
		ID    string          `json:"id"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return Event{}, fmt.Errorf("decode body: %w", err)
	}
	if strings.ContainsAny(body.Event, "\r\n") || strings.ContainsAny(body.ID, "\r\n\x00") {
		return Event{}, errors.New("event and id must be single lines")
	}
	data, err := DataText(body.Data)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: body.ID, Event: body.Event, Data: data}, nil
}

// publish encodes the frame once and offers it to the subscribers of the topic and of every ancestor.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	topic, err := normalizeTopic(r.PathValue("topic"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_topic", err.Error())
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return
	}
	ev, err := ParseEvent(raw)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_event", err.Error())
		return
	}
	if ev.ID == "" {
		ev.ID = strconv.FormatUint(s.nextID.Add(1), 10)
	}
	frame := EncodeFrame(nil, ev.ID, ev.Event, ev.Data)
	s.published.Add(1)

	s.mu.RLock()
	for t := topic; ; {
		for sub := range s.topics[t] {
			select {
			case sub.ch <- frame:
			default:
				s.dropped.Add(1)
			}
		}
		i := strings.LastIndexByte(t, '/')
		if i < 0 {
			break
		}
		t = t[:i]
	}
	s.mu.RUnlock()

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		ID string `json:"id"`
	}{ev.ID})
}

// DataText is the text that goes into the data lines: a JSON string is sent unquoted, any other JSON
// value compacted, and a missing value as the empty string.
func DataText(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode data string: %w", err)
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("compact data: %w", err)
	}
	return buf.Bytes(), nil
}

// EncodeFrame appends one event-stream frame to dst: "id:" and "event:" lines when set, one "data:" line
// per line of data (CR, LF and CRLF all split), and the blank line that dispatches it.
func EncodeFrame(dst []byte, id, event string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	if event != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, event...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		line := data
		if i >= 0 {
			line = data[:i]
		}
		dst = append(dst, "data: "...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if i < 0 {
			break
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// Serve runs the server on ln until ctx ends, then ends every stream and shuts down. Streams never
// become idle, so plain http.Server.Shutdown would wait for them forever; cancelling the base context
// that every request context derives from ends them first.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	cancel()
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
