package edge

import (
	"net"
	"net/netip"
	"sync"
)

// ipLimiter bounds the streams one source address may hold. Behind a load balancer every stream comes
// from the balancer's address, so there the balancer should enforce the bound and this one be off (0).
type ipLimiter struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

func (l *ipLimiter) acquire(ip netip.Addr) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return false
	}
	if l.n == nil {
		l.n = make(map[netip.Addr]int)
	}
	l.n[ip]++
	return true
}

func (l *ipLimiter) release(ip netip.Addr) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip]--; l.n[ip] <= 0 {
		delete(l.n, ip)
	}
}

// remoteIP is the peer's address without port, IPv4-mapped addresses unmapped.
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
