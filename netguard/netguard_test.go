package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers from a map; calls counts lookups.
type fakeResolver struct {
	hosts map[string][]string
	calls atomic.Int32
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.calls.Add(1)
	ss, ok := f.hosts[strings.TrimSuffix(strings.ToLower(host), ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// rebinder answers first for the first lookup and then for every later one.
type rebinder struct {
	first, then string
	calls       atomic.Int32
}

func (r *rebinder) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if r.calls.Add(1) == 1 {
		return []netip.Addr{netip.MustParseAddr(r.first)}, nil
	}
	return []netip.Addr{netip.MustParseAddr(r.then)}, nil
}

func mustPolicy(t testing.TB, allow string, loopback bool) *Policy {
	t.Helper()
	p, err := ParsePolicy(allow, loopback)
	if err != nil {
		t.Fatal(err)
	}
	p.Resolver = &fakeResolver{hosts: map[string][]string{
		"public.example":   {"93.184.216.34", "2606:2800:220:1::1"},
		"internal.svc":     {"10.1.2.3"},
		"db.svc":           {"10.1.2.4"},
		"mixed.example":    {"93.184.216.34", "10.0.0.1"},
		"localhost":        {"127.0.0.1", "::1"},
		"metadata.example": {"169.254.169.254"},
		"mapped.example":   {"::ffff:192.168.1.1"},
		"svc":              {"10.1.2.5"},
		"badexample.com":   {"192.168.0.9"},
	}}
	return p
}

func refused(t *testing.T, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

func TestCheckURLRefusesSpecialAddresses(t *testing.T) {
	ctx := context.Background()
	p := mustPolicy(t, "", false)
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data",
		"http://[::ffff:10.0.0.1]/",
		"http://[::ffff:169.254.169.254]/",
		"http://[::ffff:127.0.0.1]:8080/",
		"http://127.0.0.1/", "http://127.1.2.3/", "http://[::1]/",
		"http://10.0.0.1/", "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.1.1/",
		"http://100.64.0.1/", "http://100.100.100.200/", "http://[fd00::1]/", "http://[fd00:ec2::254]/",
		"http://169.254.0.1/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/",
		"http://0.0.0.0/", "http://0.1.2.3/", "http://[::]/", "http://224.0.0.1/", "http://[ff02::1]/",
		"http://255.255.255.255/", "http://[64:ff9b::a00:1]/", "http://[2002:a00:1::]/", "http://[::a00:1]/",
		"http://[fec0::1]/",
		"http://metadata.example/", "http://mapped.example/", "http://localhost/",
	} {
		refused(t, p.CheckURL(ctx, u))
	}
	refused(t, p.CheckURL(ctx, "http://169.254.169.254/latest/meta-data"), "169.254.169.254", "metadata")
	refused(t, p.CheckURL(ctx, "https://internal.svc/x"), `"internal.svc"`, "10.1.2.3", "private")
	// Any refused address among public ones refuses the host.
	refused(t, p.CheckURL(ctx, "https://mixed.example/"), "10.0.0.1")
}

func TestCheckURLAllowsPublic(t *testing.T) {
	ctx := context.Background()
	p := mustPolicy(t, "", false)
	for _, u := range []string{
		"https://93.184.216.34/", "http://8.8.8.8:8080/x", "http://[2606:4700::1111]/",
		"https://public.example/fn", "HTTP://PUBLIC.EXAMPLE./fn", "http://172.32.0.1/", "http://[64:ff9b::808:808]/",
	} {
		if err := p.CheckURL(ctx, u); err != nil {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
	var zero Policy
	if err := zero.CheckIP(netip.MustParseAddr("1.1.1.1")); err != nil {
		t.Error(err)
	}
	refused(t, zero.CheckIP(netip.MustParseAddr("10.0.0.1")))
}

func TestCheckURLAllowList(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		allow string
		url   string
		ok    bool
	}{
		{"internal.svc", "http://internal.svc/", true},
		{"INTERNAL.svc.", "http://internal.svc/", true},
		{"internal.svc", "http://db.svc/", false},
		{"*.svc", "http://db.svc/", true},
		{"*.svc", "http://a.b.svc/", true},
		{"*.svc", "http://svc/", false},
		{"*.example.com", "http://badexample.com/", false},
		{"10.0.0.0/8", "http://internal.svc/", true},
		{"10.1.2.3", "http://internal.svc/", true},
		{"10.1.2.3", "http://db.svc/", false},
		{"10.1.2.3/32", "http://[::ffff:10.1.2.3]/", true},
		{"::ffff:10.0.0.0/104", "http://10.9.9.9/", true},
		{"::ffff:0:0/96", "http://192.168.0.1/", true},
		{"0.0.0.0/0,::/0", "http://169.254.169.254/", true},
		{"0.0.0.0/0", "http://[fd00::1]/", false},
		{"fd00::/8", "http://[fd00::1]/", true},
		{"[fd00::1]", "http://[fd00::1]/", true},
		{"169.254.169.254", "http://169.254.169.254/", true},
		{" 192.168.0.0/16 , , internal.svc ", "http://192.168.7.7/", true},
		// Allowed by name: trusted without resolving (it may not exist yet).
		{"not-yet.svc", "http://not-yet.svc/", true},
	}
	for _, tc := range cases {
		p := mustPolicy(t, tc.allow, false)
		err := p.CheckURL(ctx, tc.url)
		if tc.ok && err != nil {
			t.Errorf("allow %q, %s: %v", tc.allow, tc.url, err)
		}
		if !tc.ok && !errors.Is(err, ErrRefused) {
			t.Errorf("allow %q, %s: err = %v, want refused", tc.allow, tc.url, err)
		}
	}
}

func TestLoopback(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		allow    string
		loopback bool
		ok       bool
	}{
		{"", false, false},
		{"", true, true},
		{"127.0.0.1,::1", false, true},
		{"127.0.0.0/8,::1/128", false, true},
		{"10.0.0.0/8", false, false},
	} {
		p := mustPolicy(t, tc.allow, tc.loopback)
		for _, u := range []string{"http://127.0.0.1:9000/", "http://[::1]/", "http://localhost:9000/", "http://[::ffff:127.0.0.1]/"} {
			err := p.CheckURL(ctx, u)
			if tc.ok != (err == nil) {
				t.Errorf("allow %q loopback %v, %s: %v", tc.allow, tc.loopback, u, err)
			}
		}
	}
	// Allowing the name localhost trusts what it resolves to, not loopback literals.
	p := mustPolicy(t, "localhost", false)
	if err := p.CheckURL(ctx, "http://localhost:9000/"); err != nil {
		t.Error(err)
	}
	refused(t, p.CheckURL(ctx, "http://127.0.0.1:9000/"))
	// allowLoopback is about loopback only.
	refused(t, mustPolicy(t, "", true).CheckURL(ctx, "http://10.0.0.1/"))
}

func TestCheckURLInvalid(t *testing.T) {
	ctx := context.Background()
	p := mustPolicy(t, "", false)
	for _, u := range []string{"", "ftp://93.184.216.34/", "file:///etc/passwd", "gopher://x/", "/relative", "http:///path", "http://%zz/", "93.184.216.34"} {
		err := p.CheckURL(ctx, u)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("CheckURL(%q) = %v, want ErrInvalidURL", u, err)
		}
	}
	err := p.CheckURL(ctx, "http://nxdomain.example/")
	var dnsErr *net.DNSError
	if err == nil || errors.Is(err, ErrRefused) || !errors.As(err, &dnsErr) {
		t.Errorf("unresolvable: %v", err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, s := range []string{"*", "*.", "host:8080", "http://x", "10.0.0.0/33", "10.0.0.0/x", "1.2.3", "0177.0.0.1",
		"bad host", "a..b", "[::1]:80", "*.*.x", strings.Repeat("a", 64) + ".com", "é.com"} {
		if _, err := ParsePolicy(s, false); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", s)
		}
	}
	p, err := ParsePolicy(" 10.0.0.0/8 , *.svc.cluster.local, api.internal., [::1], fd00::/8, ,x_y.local", true)
	if err != nil {
		t.Fatal(err)
	}
	s := p.String()
	for _, want := range []string{"loopback", "10.0.0.0/8", "*.svc.cluster.local", "api.internal", "::1/128", "fd00::/8"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q lacks %q", s, want)
		}
	}
	if !strings.Contains(mustPolicy(t, "", false).String(), "public addresses only") {
		t.Error(mustPolicy(t, "", false).String())
	}
}

func TestNilPolicy(t *testing.T) {
	var p *Policy
	if p.CheckURL(context.Background(), "http://169.254.169.254/") != nil || p.CheckIP(netip.MustParseAddr("10.0.0.1")) != nil || !p.HostAllowed("x") {
		t.Fatal("nil policy must allow everything")
	}
	ln := listen(t)
	c, err := p.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	_ = p.String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// assertNoAccept fails if ln accepts a connection within a short window.
func assertNoAccept(t *testing.T, ln net.Listener) {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("listener accepted a connection that should have been refused")
	}
}

func TestDialAllowedLoopback(t *testing.T) {
	ln := listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	p := mustPolicy(t, "", true)
	c, err := p.Dial(fmt.Sprintf("localhost:%d", port)) // resolves to 127.0.0.1 and ::1; the first works
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	c.Close()
	if s := <-got; s != "ping" {
		t.Fatalf("listener got %q", s)
	}
}

func TestDialRefusedSendsNothing(t *testing.T) {
	ln := listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	p := mustPolicy(t, "", false)
	for _, addr := range []string{
		fmt.Sprintf("127.0.0.1:%d", port),
		fmt.Sprintf("[::ffff:127.0.0.1]:%d", port),
		fmt.Sprintf("localhost:%d", port),
	} {
		c, err := p.DialTimeout(addr, time.Second)
		if c != nil {
			c.Close()
		}
		refused(t, err, "127.0.0.1")
	}
	assertNoAccept(t, ln)
	// Allowed by an explicit entry instead.
	c, err := mustPolicy(t, "127.0.0.1", false).Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestDialRebinding(t *testing.T) {
	ln := listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	addr := fmt.Sprintf("rebind.example:%d", port)

	// The check sees a public address, the connection would see loopback: Dial resolves itself and
	// refuses, so an earlier CheckURL is no licence.
	p := mustPolicy(t, "", false)
	r := &rebinder{first: "93.184.216.34", then: "127.0.0.1"}
	p.Resolver = r
	if err := p.CheckURL(context.Background(), "http://"+addr+"/"); err != nil {
		t.Fatal(err)
	}
	_, err := p.Dial(addr)
	refused(t, err, "127.0.0.1")
	assertNoAccept(t, ln)

	// Dial resolves once and connects to the address it checked, not to a second answer.
	p = mustPolicy(t, "", false)
	r = &rebinder{first: "192.0.2.1", then: "127.0.0.1"}
	p.Resolver = r
	var dialed []string
	p.dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		dialed = append(dialed, a)
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	c, err := p.DialTimeout(addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("connected to the TEST-NET address?")
	}
	if r.calls.Load() != 1 || len(dialed) != 1 || dialed[0] != fmt.Sprintf("192.0.2.1:%d", port) {
		t.Fatalf("lookups %d, dialed %v", r.calls.Load(), dialed)
	}
	assertNoAccept(t, ln)
}

func TestDialErrors(t *testing.T) {
	p := mustPolicy(t, "", false)
	if _, err := p.Dial("no-port"); err == nil {
		t.Error("address without port accepted")
	}
	if _, err := p.DialContext(context.Background(), "udp", "8.8.8.8:53"); err == nil {
		t.Error("udp accepted")
	}
	if _, err := p.DialContext(context.Background(), "tcp6", "93.184.216.34:80"); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("tcp6 to an IPv4 address: %v", err)
	}
	start := time.Now()
	if _, err := p.DialTimeout("nxdomain.example:80", 50*time.Millisecond); err == nil {
		t.Error("unresolvable host dialed")
	}
	if time.Since(start) > 5*time.Second {
		t.Error("dial not bounded")
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"", "*", "10.0.0.0/8", "*.svc,db", "[::1]", "::ffff:10.0.0.0/104", "0.0.0.0/0,::/0",
		"a..b", "1.2.3", " , ,", "fe80::1%eth0", "*.", "x:1", "[fd00::/8]"} {
		f.Add(s, false)
	}
	meta := netip.MustParseAddr("169.254.169.254")
	f.Fuzz(func(t *testing.T, allow string, loopback bool) {
		p, err := ParsePolicy(allow, loopback)
		if err != nil {
			return
		}
		_ = p.String()
		p.Resolver = &fakeResolver{hosts: map[string][]string{"h.example": {"10.0.0.1"}}}
		for _, s := range []string{"10.0.0.1", "::ffff:127.0.0.1", "fe80::1", "8.8.8.8"} {
			_ = p.CheckIP(netip.MustParseAddr(s))
		}
		_ = p.CheckURL(context.Background(), "http://"+allow+"/")
		_ = p.CheckURL(context.Background(), "http://h.example/")
		_ = p.HostAllowed(allow)
		// The metadata address is reachable only if an allow entry covers it.
		if err := p.CheckIP(meta); (err == nil) != p.ipAllowed(meta) {
			t.Fatalf("metadata: %v with allow %q", err, allow)
		}
	})
}
