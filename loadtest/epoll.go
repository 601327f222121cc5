package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// epollClient holds streams on raw non-blocking sockets multiplexed by epoll in a few goroutines (one
// per poller). A poller both dials its share of the streams, at most conc/pollers at a time between
// connect and response head, and reads them; one 64 KiB read buffer per poller serves all its sockets,
// so an idle stream costs the client a socket, an 8-byte slot and a stream struct. Nothing a poller owns
// is touched by another goroutine until Close has waited for it.
type epollClient struct {
	stop chan struct{}
	wg   sync.WaitGroup
	pols []*poller
	once sync.Once
}

type poller struct {
	id, count int // this poller serves global streams id, id+count, id+2*count, ...
	epfd      int
	spec      *dialSpec
	sh        *shared
	streams   []stream // all streams; this poller touches only its own
	fds       []int32  // per local stream; -1 when not open
	wrote     []uint16 // request bytes written, per local stream
	next      int      // next local stream to dial
	pending   int      // dialled streams still waiting for their head
	limit     int
	col       collector
	hist      Histogram
	buf       []byte
}

func startEpoll(spec *dialSpec, sh *shared, streams []stream, pollers int) (*epollClient, error) {
	pollers = max(1, min(pollers, spec.n))
	c := &epollClient{stop: make(chan struct{})}
	for id := range pollers {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			for _, p := range c.pols {
				unix.Close(p.epfd)
			}
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		local := (spec.n - id + pollers - 1) / pollers
		p := &poller{
			id: id, count: pollers, epfd: epfd, spec: spec, sh: sh, streams: streams,
			fds: make([]int32, local), wrote: make([]uint16, local),
			limit: max(1, spec.conc/pollers), buf: make([]byte, 64<<10),
		}
		for i := range p.fds {
			p.fds[i] = -1
		}
		p.col = collector{sh: sh, hist: &p.hist}
		c.pols = append(c.pols, p)
	}
	for _, p := range c.pols {
		c.wg.Go(func() { p.run(c.stop) })
	}
	return c, nil
}

// Close implements streamClient.
func (c *epollClient) Close() {
	c.once.Do(func() {
		c.sh().stopping.Store(true)
		close(c.stop)
		c.wg.Wait()
	})
}

func (c *epollClient) sh() *shared { return c.pols[0].sh }

// histogram merges the pollers' latency histograms into h; call after Close.
func (c *epollClient) histogram(h *Histogram) {
	for _, p := range c.pols {
		h.Merge(&p.hist)
	}
}

func (p *poller) run(stop <-chan struct{}) {
	defer p.closeAll()
	events := make([]unix.EpollEvent, 1024)
	full := false // the last wait filled events: more are ready, do not pause
	for {
		select {
		case <-stop:
			return
		default:
		}
		for p.pending < p.limit && p.next < len(p.fds) {
			p.dial(p.next)
			p.next++
		}
		if p.spec.readDelay > 0 && !full && p.next >= len(p.fds) {
			time.Sleep(p.spec.readDelay)
		}
		n, err := unix.EpollWait(p.epfd, events, 50)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			p.sh.noteErr(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		full = n == len(events)
		for _, ev := range events[:n] {
			k := int(ev.Fd)
			if p.fds[k] < 0 {
				continue
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR) != 0 && int(p.wrote[k]) < len(p.spec.request) {
				if !p.writeRequest(k) {
					continue
				}
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				p.readAll(k)
			}
		}
	}
}

func (p *poller) stream(k int) *stream { return &p.streams[k*p.count+p.id] }

// dial starts a non-blocking connect of local stream k and registers it edge-triggered.
func (p *poller) dial(k int) {
	fail := func(fd int, err error) {
		if fd >= 0 {
			unix.Close(fd)
		}
		p.sh.ended(p.stream(k), err)
	}
	ta := p.spec.target.Addr()
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(p.spec.target.Port()), Addr: ta.As4()}
	if ta.Is6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(p.spec.target.Port()), Addr: ta.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail(-1, fmt.Errorf("socket: %w", err))
		return
	}
	if len(p.spec.srcIPs) > 0 {
		g := k*p.count + p.id
		src := p.spec.srcIPs[g%len(p.spec.srcIPs)]
		// Defer the choice of the local port to connect, so ports are shared across destinations
		// and each source address yields a full ephemeral range.
		_ = unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			fail(fd, fmt.Errorf("bind %s: %w", src, err))
			return
		}
	}
	if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		fail(fd, fmt.Errorf("connect: %w", err))
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(k)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		fail(fd, fmt.Errorf("epoll_ctl: %w", err))
		return
	}
	p.fds[k] = int32(fd)
	p.pending++
}

// writeRequest writes what is left of the request; it reports false when the stream was closed.
func (p *poller) writeRequest(k int) bool {
	req := p.spec.request[p.wrote[k]:]
	n, err := unix.Write(int(p.fds[k]), req)
	if n > 0 {
		p.wrote[k] += uint16(n)
	}
	if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
		p.end(k, fmt.Errorf("write request: %w", err))
		return false
	}
	return true
}

// readAll reads local stream k until the socket is drained (edge-triggered: a short read means the
// queue was empty at that instant, and anything arriving later raises a new edge).
func (p *poller) readAll(k int) {
	s := p.stream(k)
	for {
		n, err := unix.Read(int(p.fds[k]), p.buf)
		switch {
		case n > 0:
			established, ferr := p.col.onRead(s, p.buf[:n], time.Now().UnixNano())
			if established {
				p.pending--
			}
			if ferr != nil {
				p.end(k, ferr)
				return
			}
			if n < len(p.buf) {
				return
			}
		case n == 0 && err == nil:
			p.end(k, errStreamEnded)
			return
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR):
		default:
			p.end(k, fmt.Errorf("read: %w", err))
			return
		}
	}
}

// end closes local stream k and accounts for why.
func (p *poller) end(k int, err error) {
	unix.Close(int(p.fds[k]))
	p.fds[k] = -1
	if p.sh.ended(p.stream(k), err) {
		p.pending--
	}
}

func (p *poller) closeAll() {
	for k, fd := range p.fds {
		if fd >= 0 {
			unix.Close(int(fd))
			p.fds[k] = -1
			p.sh.ended(p.stream(k), nil)
		}
	}
	unix.Close(p.epfd)
}
