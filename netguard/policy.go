// Package netguard decides which hosts registered function endpoints may reach, so that registering a
// function cannot turn the edge into a proxy to its own host, its private network or a cloud metadata
// service (server-side request forgery).
//
// Public internet addresses are allowed. Loopback, private (RFC 1918, fc00::/7), carrier-grade NAT,
// link-local (including 169.254.169.254), unspecified, multicast and other special-purpose ranges are
// refused unless FUNCTION_ALLOW names the host or covers the address. IPv4-mapped IPv6 and NAT64/6to4
// forms are judged by the IPv4 address they carry.
//
// CheckURL validates an endpoint when it is registered; Dial and DialTimeout plug into
// fasthttp.Client.Dial/DialTimeout and enforce the same policy on every connection, dialing the very IP
// they checked so a DNS answer that changes between check and connect (DNS rebinding) cannot bypass it.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrRefused is wrapped by every refusal of an address or host by the policy.
	ErrRefused = errors.New("netguard: address refused")
	// ErrInvalidURL is wrapped when an endpoint is not an absolute http(s) URL with a host.
	ErrInvalidURL = errors.New("netguard: invalid endpoint URL")
)

// DefaultDialTimeout bounds resolution plus connection in Dial when Policy.Timeout is zero (the
// fasthttp default).
const DefaultDialTimeout = 3 * time.Second

// Resolver resolves host names; *net.Resolver implements it. Tests inject fakes.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says which hosts function endpoints may reach. Build it with ParsePolicy; the zero value
// allows public addresses only, and a nil *Policy allows everything (for tests and embedding). A Policy
// is safe for concurrent use once its exported fields are set.
type Policy struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds resolution plus connection in Dial; zero means DefaultDialTimeout.
	Timeout time.Duration

	allowLoopback bool
	names         map[string]struct{} // exact host names, lower case, no trailing dot
	suffixes      []string            // ".example.com" for "*.example.com"
	prefixes      []netip.Prefix      // allowed IPs and CIDRs, IPv4 unmapped

	dial func(ctx context.Context, network, addr string) (net.Conn, error) // nil: net.Dialer (tests hook it)
}

// ParsePolicy builds a Policy from allow, the FUNCTION_ALLOW value: comma-separated entries, each an
// exact host name ("fn.internal"), a subdomain wildcard ("*.svc.cluster.local", which does not match
// the apex "svc.cluster.local" itself), an IP ("10.0.0.5", "[fd00::5]") or a CIDR ("10.0.0.0/8").
// Blank entries are ignored. Ports, schemes and a bare "*" are errors; to allow every address, say
// "0.0.0.0/0,::/0" explicitly. allowLoopback additionally allows 127.0.0.0/8 and ::1 (the edge allows
// loopback while it runs without secrets).
//
// A host allowed by name may resolve to any address: naming it is trusting its DNS.
func ParsePolicy(allow string, allowLoopback bool) (*Policy, error) {
	p := &Policy{allowLoopback: allowLoopback}
	for entry := range strings.SplitSeq(allow, ",") {
		e := strings.TrimSpace(entry)
		if e == "" {
			continue
		}
		if err := p.add(e); err != nil {
			return nil, fmt.Errorf("netguard: FUNCTION_ALLOW entry %q: %w", e, err)
		}
	}
	return p, nil
}

func (p *Policy) add(e string) error {
	if e == "*" {
		return errors.New(`"*" is not accepted; write "0.0.0.0/0,::/0" to allow every address`)
	}
	if strings.Contains(e, "/") {
		pfx, err := netip.ParsePrefix(strings.Trim(e, "[]"))
		if err != nil {
			return fmt.Errorf("not a CIDR: %w", err)
		}
		p.prefixes = append(p.prefixes, normPrefix(pfx.Masked()))
		return nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")); err == nil {
		ip = ip.WithZone("").Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	name, wildcard := strings.CutPrefix(e, "*.")
	name = normHost(name)
	if err := validName(name); err != nil {
		return err
	}
	if wildcard {
		p.suffixes = append(p.suffixes, "."+name)
		return nil
	}
	if p.names == nil {
		p.names = make(map[string]struct{})
	}
	p.names[name] = struct{}{}
	return nil
}

// normPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into its IPv4 form.
func normPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// validName accepts DNS-like names: dot-separated labels of letters, digits, '-' and '_'. A name whose
// last label is all digits is refused, as resolvers may read it as an IP in a legacy form (0177.1).
func validName(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("not a host name, IP or CIDR")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("not a host name, IP or CIDR")
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("not a host name, IP or CIDR (character %q; ports and schemes do not belong here)", c)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("numeric name that is not a valid IP")
	}
	return nil
}

// String describes the policy for start-up logs.
func (p *Policy) String() string {
	if p == nil {
		return "function endpoints: any address (no policy)"
	}
	var allow []string
	if p.allowLoopback {
		allow = append(allow, "loopback")
	}
	for n := range p.names {
		allow = append(allow, n)
	}
	for _, s := range p.suffixes {
		allow = append(allow, "*"+s)
	}
	for _, pf := range p.prefixes {
		allow = append(allow, pf.String())
	}
	if len(allow) == 0 {
		return "function endpoints: public addresses only"
	}
	return "function endpoints: public addresses plus " + strings.Join(allow, ", ")
}

// HostAllowed reports whether host (a name, not an IP) is allowed by name, exactly or by wildcard.
func (p *Policy) HostAllowed(host string) bool {
	if p == nil {
		return true
	}
	h := normHost(host)
	if _, ok := p.names[h]; ok {
		return true
	}
	for _, s := range p.suffixes {
		if len(h) > len(s) && strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// CheckIP returns nil when ip may be reached, and otherwise an error wrapping ErrRefused that names the
// address and its range.
func (p *Policy) CheckIP(ip netip.Addr) error {
	if p == nil {
		return nil
	}
	if r := p.refusal(ip); r != "" {
		return fmt.Errorf("%w: %s is a %s address; allow it in FUNCTION_ALLOW to reach it", ErrRefused, ip, r)
	}
	return nil
}

// refusal returns why ip is refused, or "" when it is allowed.
func (p *Policy) refusal(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return "invalid"
	}
	if p.ipAllowed(ip) || p.allowLoopback && ip.IsLoopback() {
		return ""
	}
	return classify(ip)
}

// ipAllowed reports whether an allow entry covers ip (unmapped), in its own or its IPv4-mapped form.
func (p *Policy) ipAllowed(ip netip.Addr) bool {
	mapped := ip
	if ip.Is4() {
		mapped = netip.AddrFrom16(ip.As16())
	}
	for _, pf := range p.prefixes {
		if pf.Contains(ip) || pf.Contains(mapped) {
			return true
		}
	}
	return false
}

// CheckURL validates a function endpoint: an absolute http or https URL whose host is allowed by name,
// or whose every address (the IP literal, or all that the host resolves to) is allowed. Refusals wrap
// ErrRefused and name the host and IP; malformed URLs wrap ErrInvalidURL; resolution failures are
// returned as they are. A nil policy allows everything.
func (p *Policy) CheckURL(ctx context.Context, rawURL string) error {
	if p == nil {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return fmt.Errorf("%w: %q: scheme must be http or https", ErrInvalidURL, rawURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %q: no host", ErrInvalidURL, rawURL)
	}
	if _, err := netip.ParseAddr(host); err != nil && p.HostAllowed(host) {
		return nil // trusted by name; it need not resolve yet (e.g. a service not started)
	}
	_, err = p.resolve(ctx, host, "ip")
	return err
}

// resolve returns the addresses to connect to for host, after checking them: an IP literal is checked
// as is; a host allowed by name is resolved and trusted; any other name is resolved and refused if any
// of its addresses is refused (so a hostile DNS answer cannot slip a private address among public ones).
func (p *Policy) resolve(ctx context.Context, host, network string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if r := p.refusal(ip); r != "" {
			return nil, fmt.Errorf("%w: host %s is a %s address; allow it in FUNCTION_ALLOW to reach it", ErrRefused, host, r)
		}
		return []netip.Addr{ip}, nil
	}
	var r Resolver = net.DefaultResolver
	if p.Resolver != nil {
		r = p.Resolver
	}
	ips, err := r.LookupNetIP(ctx, network, host)
	if err != nil {
		return nil, fmt.Errorf("netguard: resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("netguard: resolve %q: no addresses", host)
	}
	if p.HostAllowed(host) {
		return ips, nil
	}
	for _, ip := range ips {
		if r := p.refusal(ip); r != "" {
			return nil, fmt.Errorf("%w: host %q resolves to %s, a %s address; allow the host or address in FUNCTION_ALLOW to reach it",
				ErrRefused, host, ip, r)
		}
	}
	return ips, nil
}
