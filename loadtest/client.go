package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dialSpec says which streams a client opens.
type dialSpec struct {
	target  netip.AddrPort
	request []byte       // the whole GET request, shared by every stream
	n       int          // streams to open
	conc    int          // most streams between connect and response head at once
	srcIPs  []netip.Addr // local addresses to bind, round robin; nil binds none
	// readDelay (epoll client) pauses each poller this long before an epoll_wait, once every stream is
	// dialled and unless the previous wait came back full, so that frames queue up and one read takes
	// several: about half the client CPU per delivery, at the price of up to readDelay more latency.
	readDelay time.Duration
}

// streamClient is a running set of streams. Close ends them all and waits for the client's goroutines,
// after which the streams slice handed to the client may be read and histogram called.
type streamClient interface {
	Close()
	// histogram merges the publish-to-read latencies the streams recorded into h.
	histogram(h *Histogram)
}

// startClient opens spec.n streams with the named implementation ("epoll" or "goroutine"), results
// accumulating in sh and in streams (len spec.n).
func startClient(kind string, pollers int, spec *dialSpec, sh *shared, streams []stream) (streamClient, error) {
	switch kind {
	case "epoll":
		return startEpoll(spec, sh, streams, pollers)
	case "goroutine":
		return startGoroutines(spec, sh, streams), nil
	}
	return nil, fmt.Errorf("unknown client %q (want epoll or goroutine)", kind)
}

// shared is what every stream of a run reports into: counters read live by the driver of the run, and
// the event types that count. Fields other than the atomics are set before the client starts.
type shared struct {
	want  []byte // event type counted as a delivery; nil counts nothing
	probe []byte // event type that marks a stream as subscribed

	established  atomic.Int64 // response heads 200 text/event-stream
	failed       atomic.Int64 // streams that never got such a head
	closed       atomic.Int64 // established streams the server ended or broke
	delivered    atomic.Int64 // counted events
	probed       atomic.Int64 // streams that saw a probe event
	unstamped    atomic.Int64 // counted events without a parsable timestamp
	lastDelivery atomic.Int64 // unix nanos of the last read that carried a counted event
	stopping     atomic.Bool  // set by Close: ends after this are ours, not the server's

	errMu sync.Mutex
	errs  map[string]int // error text -> count, at most maxErrKinds kinds
}

const maxErrKinds = 8

func (sh *shared) noteErr(err error) {
	sh.errMu.Lock()
	defer sh.errMu.Unlock()
	if sh.errs == nil {
		sh.errs = make(map[string]int)
	}
	msg := err.Error()
	if _, ok := sh.errs[msg]; ok || len(sh.errs) < maxErrKinds {
		sh.errs[msg]++
	}
}

// errSummary lists the errors seen, most frequent first, for the report.
func (sh *shared) errSummary() []string {
	sh.errMu.Lock()
	defer sh.errMu.Unlock()
	msgs := make([]string, 0, len(sh.errs))
	for msg := range sh.errs {
		msgs = append(msgs, msg)
	}
	sort.Slice(msgs, func(i, j int) bool {
		a, b := sh.errs[msgs[i]], sh.errs[msgs[j]]
		return a > b || a == b && msgs[i] < msgs[j]
	})
	for i, msg := range msgs {
		msgs[i] = fmt.Sprintf("%dx %s", sh.errs[msg], msg)
	}
	return msgs
}

// ended records that stream s stopped with err and reports whether it had still been waiting for its
// head (so the caller releases its connect slot).
func (sh *shared) ended(s *stream, err error) (wasConnecting bool) {
	switch s.phase {
	case phaseHead:
		sh.failed.Add(1)
		if err != nil {
			sh.noteErr(err)
		}
		wasConnecting = true
	case phaseBody:
		if !sh.stopping.Load() {
			sh.closed.Add(1)
			if err != nil {
				sh.noteErr(fmt.Errorf("after head: %w", err))
			}
		}
	}
	s.phase = phaseDone
	return wasConnecting
}

// collector is the EventHandler of the streams served by one goroutine: it counts events of the wanted
// type per stream and records their publish-to-read latency. Set cur and now before each feed.
type collector struct {
	sh   *shared
	hist *Histogram
	cur  *stream
	now  int64 // unix nanos at which the bytes being fed were read
	n    int64 // counted events since the last flush
}

// OnEvent implements EventHandler.
func (c *collector) OnEvent(ev Event) {
	if c.sh.want == nil {
		return
	}
	if bytes.Equal(ev.Type, c.sh.want) {
		c.cur.events++
		c.n++
		if t, ok := parseStamp(ev.Data); ok {
			c.hist.Record(c.now - t)
		} else {
			c.sh.unstamped.Add(1)
		}
		return
	}
	if !c.cur.probed && bytes.Equal(ev.Type, c.sh.probe) {
		c.cur.probed = true
		c.sh.probed.Add(1)
	}
}

// onRead feeds b, read from s at now, and reports whether the read completed the head (the stream is
// established) and any error that ends the stream.
func (c *collector) onRead(s *stream, b []byte, now int64) (established bool, err error) {
	c.cur, c.now = s, now
	wasHead := s.phase == phaseHead
	err = s.feed(b, c)
	if c.n > 0 {
		c.sh.delivered.Add(c.n)
		c.n = 0
		for last := c.sh.lastDelivery.Load(); now > last && !c.sh.lastDelivery.CompareAndSwap(last, now); last = c.sh.lastDelivery.Load() {
		}
	}
	if wasHead && s.phase == phaseBody {
		c.sh.established.Add(1)
		established = true
	}
	return established, err
}

// stampKey is the JSON key whose number is the publish time in unix nanoseconds.
const stampKey = `"t":`

// parseStamp finds `"t": <digits>` in data without decoding the JSON (no allocation per event).
func parseStamp(data []byte) (int64, bool) {
	i := bytes.Index(data, []byte(stampKey))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(data[i+len(stampKey):], " \t")
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	return parseDigits(rest[:end])
}

// resolveTarget turns a base URL into the address to dial and the Host header to send.
func resolveTarget(ctx context.Context, base string) (netip.AddrPort, string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return netip.AddrPort{}, "", fmt.Errorf("parse url %q: %w", base, err)
	}
	if u.Scheme != "http" {
		return netip.AddrPort{}, "", fmt.Errorf("url %q: only http:// is supported", base)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, "", fmt.Errorf("resolve %q: %w", u.Hostname(), errors.Join(err, errors.New("no address")))
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(addrs[0].Unmap().String(), port))
	if err != nil {
		return netip.AddrPort{}, "", fmt.Errorf("target address: %w", err)
	}
	return ap, u.Host, nil
}

// buildRequest is the minimal request head of one stream.
func buildRequest(host, path string) []byte {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n\r\n")
}

// sourceIPs returns k loopback source addresses 127.0.y.z (z in 2..250) to spread streams over when the
// target is IPv4 loopback, so that more than one address's worth of ephemeral ports (about 28k) can be
// held; other targets get none (the kernel picks the source).
func sourceIPs(target netip.AddrPort, k int) []netip.Addr {
	if k <= 0 || !target.Addr().Is4() || !target.Addr().IsLoopback() {
		return nil
	}
	k = min(k, 251*249)
	out := make([]netip.Addr, k)
	for j := range out {
		out[j] = netip.AddrFrom4([4]byte{127, 0, byte(j / 249), byte(2 + j%249)})
	}
	return out
}
