package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// goClient holds each stream in its own goroutine reading a net.Conn through a 512-byte buffer: the
// straightforward Go client, kept to compare against epollClient (run idle with -client goroutine).
type goClient struct {
	ctx    context.Context
	cancel context.CancelFunc
	spec   *dialSpec
	sh     *shared
	hist   Histogram // shared by every stream goroutine (atomic counters)
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[int]net.Conn
}

func startGoroutines(spec *dialSpec, sh *shared, streams []stream) *goClient {
	ctx, cancel := context.WithCancel(context.Background())
	g := &goClient{ctx: ctx, cancel: cancel, spec: spec, sh: sh, conns: make(map[int]net.Conn)}
	slots := make(chan struct{}, max(1, spec.conc))
	g.wg.Go(func() {
		for i := range spec.n {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			g.wg.Go(func() { g.serve(i, &streams[i], slots) })
		}
	})
	return g
}

// Close implements streamClient.
func (g *goClient) Close() {
	g.sh.stopping.Store(true)
	g.cancel()
	g.mu.Lock()
	for _, c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// histogram merges the latency samples into h; call after Close.
func (g *goClient) histogram(h *Histogram) { h.Merge(&g.hist) }

func (g *goClient) serve(i int, s *stream, slots <-chan struct{}) {
	release := func() { <-slots }
	d := net.Dialer{}
	if len(g.spec.srcIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: g.spec.srcIPs[i%len(g.spec.srcIPs)].AsSlice()}
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, ipBindAddressNoPort, 1)
			})
			return errors.Join(err, serr)
		}
	}
	conn, err := d.DialContext(g.ctx, "tcp", g.spec.target.String())
	if err != nil {
		g.sh.ended(s, fmt.Errorf("dial: %w", err))
		release()
		return
	}
	g.mu.Lock()
	if g.ctx.Err() != nil {
		g.mu.Unlock()
		conn.Close()
		g.sh.ended(s, nil)
		release()
		return
	}
	g.conns[i] = conn
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.conns, i)
		g.mu.Unlock()
		conn.Close()
	}()

	col := &collector{sh: g.sh, hist: &g.hist}
	if _, err := conn.Write(g.spec.request); err != nil {
		g.sh.ended(s, fmt.Errorf("write request: %w", err))
		release()
		return
	}
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			established, ferr := col.onRead(s, buf[:n], time.Now().UnixNano())
			if established {
				release()
			}
			if ferr != nil {
				if g.sh.ended(s, ferr) {
					release()
				}
				return
			}
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || g.ctx.Err() != nil {
				err = nil
			}
			if g.sh.ended(s, err) {
				release()
			}
			return
		}
	}
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h (not in package syscall).
const ipBindAddressNoPort = 0x18
