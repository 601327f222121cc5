package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Dial connects to addr ("host:port") over TCP if the policy allows it, within Policy.Timeout. Its
// signature is fasthttp.DialFunc: set fasthttp.Client.Dial to p.Dial.
func (p *Policy) Dial(addr string) (net.Conn, error) {
	var t time.Duration
	if p != nil {
		t = p.Timeout
	}
	return p.DialTimeout(addr, t)
}

// DialTimeout is Dial with an explicit bound on resolution plus connection (zero or negative means
// Policy.Timeout, then DefaultDialTimeout). Its signature is fasthttp.DialFuncWithTimeout.
func (p *Policy) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 && p != nil {
		timeout = p.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.DialContext(ctx, "tcp", addr)
}

// DialContext connects to addr ("host:port") on network "tcp", "tcp4" or "tcp6" if the policy allows
// it. It resolves the host once, checks every candidate address (any refused address refuses the whole
// host, unless the host is allowed by name), and then dials those checked IPs itself, one after the
// other within ctx, so nothing is resolved again between the check and the connection. A refusal wraps
// ErrRefused and no connection is attempted. A nil policy dials addr directly.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	family := "ip"
	switch network {
	case "tcp":
	case "tcp4":
		family = "ip4"
	case "tcp6":
		family = "ip6"
	default:
		return nil, fmt.Errorf("netguard: dial %s: unsupported network %q", addr, network)
	}
	if p == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("netguard: dial %s: %w", addr, err)
	}
	ips, err := p.resolve(ctx, host, family)
	if err != nil {
		return nil, err
	}
	dial := p.dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	var errs []error
	for i, ip := range ips {
		if family == "ip4" && !ip.Unmap().Is4() || family == "ip6" && ip.Unmap().Is4() {
			continue
		}
		actx, cancel := partialDeadline(ctx, len(ips)-i)
		c, err := dial(actx, network, net.JoinHostPort(ip.String(), port))
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("netguard: dial %s: no %s address for %q", addr, family, host)
	}
	return nil, fmt.Errorf("netguard: dial %s: %w", addr, errors.Join(errs...))
}

// partialDeadline gives one of remaining addresses its share of ctx's time, but at least 2s when there
// is that much left, as net.Dialer does, so one black-holed address does not eat the whole budget.
func partialDeadline(ctx context.Context, remaining int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || remaining <= 1 {
		return context.WithCancel(ctx)
	}
	left := time.Until(deadline)
	share := left / time.Duration(remaining)
	const minShare = 2 * time.Second
	if share < minShare {
		share = min(minShare, left)
	}
	return context.WithTimeout(ctx, share)
}
