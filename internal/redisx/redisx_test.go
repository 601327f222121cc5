package redisx_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/redisx"
)

func TestOptions(t *testing.T) {
	pki := redistest.NewPKI(t)
	cases := []struct {
		name    string
		cfg     redisx.Config
		addrs   []string
		user    string
		pass    string
		tls     bool
		sni     string
		db      int
		wantErr string
	}{
		{name: "host:port list", cfg: redisx.Config{Addr: "a:1, b:2", Password: "p"}, addrs: []string{"a:1", "b:2"}, pass: "p"},
		{name: "URL with user, password and db", cfg: redisx.Config{Addr: "redis://u:p@h:6380/2"}, addrs: []string{"h:6380"}, user: "u", pass: "p", db: 2},
		{name: "rediss cluster URLs", cfg: redisx.Config{Addr: "rediss://u:p@h1:1,rediss://h2:2"}, addrs: []string{"h1:1", "h2:2"}, user: "u", pass: "p", tls: true},
		{name: "URL plus settings", cfg: redisx.Config{Addr: "rediss://h:1", Username: "u", Password: "p", TLSCAFile: pki.CAFile, TLSServerName: "cache.example"},
			addrs: []string{"h:1"}, user: "u", pass: "p", tls: true, sni: "cache.example"},
		{name: "host:port with a CA turns TLS on", cfg: redisx.Config{Addr: "h:1", TLSCAFile: pki.CAFile}, addrs: []string{"h:1"}, tls: true},
		{name: "mutual TLS", cfg: redisx.Config{Addr: "rediss://h:1", TLSCertFile: pki.ClientCertFile, TLSKeyFile: pki.ClientKeyFile}, addrs: []string{"h:1"}, tls: true},
		{name: "sentinel", cfg: redisx.Config{SentinelAddr: "s1:26379,s2:26379", SentinelMaster: "m", SentinelPassword: "sp", Password: "p"},
			addrs: []string{"s1:26379", "s2:26379"}, pass: "p"},

		{name: "both addr and sentinel", cfg: redisx.Config{Addr: "h:1", SentinelAddr: "s:1", SentinelMaster: "m"}, wantErr: "not both"},
		{name: "sentinel without master", cfg: redisx.Config{SentinelAddr: "s:1"}, wantErr: "go together"},
		{name: "mixed schemes", cfg: redisx.Config{Addr: "redis://a:1,rediss://b:2"}, wantErr: "mixes"},
		{name: "two passwords", cfg: redisx.Config{Addr: "redis://:p1@a:1", Password: "p2"}, wantErr: "REDIS_PASSWORD differs"},
		{name: "TLS settings on redis://", cfg: redisx.Config{Addr: "redis://a:1", TLSCAFile: pki.CAFile}, wantErr: "use rediss://"},
		{name: "bad scheme", cfg: redisx.Config{Addr: "http://a:1"}, wantErr: "invalid URL scheme"},
		{name: "not host:port", cfg: redisx.Config{Addr: "justahost"}, wantErr: "neither host:port nor a URL"},
		{name: "missing CA file", cfg: redisx.Config{Addr: "rediss://a:1", TLSCAFile: "/nonexistent.pem"}, wantErr: "REDIS_TLS_CA_FILE"},
		{name: "CA file without PEM", cfg: redisx.Config{Addr: "rediss://a:1", TLSCAFile: pki.ClientKeyFile + "x"}, wantErr: "REDIS_TLS_CA_FILE"},
		{name: "cert without key", cfg: redisx.Config{Addr: "rediss://a:1", TLSCertFile: pki.ClientCertFile}, wantErr: "go together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt, err := c.cfg.Options(nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(opt.InitAddress)
			slices.Sort(got)
			if !slices.Equal(got, c.addrs) || opt.Username != c.user || opt.Password != c.pass || opt.SelectDB != c.db {
				t.Fatalf("options: addrs %v user %q password %q db %d", opt.InitAddress, opt.Username, opt.Password, opt.SelectDB)
			}
			if (opt.TLSConfig != nil) != c.tls {
				t.Fatalf("TLS = %v; want %v", opt.TLSConfig != nil, c.tls)
			}
			if c.tls && opt.TLSConfig.ServerName != c.sni {
				t.Fatalf("ServerName = %q; want %q (empty: each dialed host)", opt.TLSConfig.ServerName, c.sni)
			}
			if c.cfg.SentinelAddr != "" && (opt.Sentinel.MasterSet != c.cfg.SentinelMaster || opt.Sentinel.Password != c.cfg.SentinelPassword) {
				t.Fatalf("sentinel options %+v", opt.Sentinel)
			}
		})
	}
}

func TestInsecureWarns(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	opt, err := redisx.Config{Addr: "rediss://h:1", TLSInsecure: true}.Options(log)
	if err != nil || !opt.TLSConfig.InsecureSkipVerify {
		t.Fatalf("insecure: %v, %+v", err, opt.TLSConfig)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "REDIS_TLS_INSECURE") {
		t.Fatalf("no warning logged: %q", logs.String())
	}
}

func TestDescribeRedacts(t *testing.T) {
	d := redisx.Config{Addr: "rediss://u:secret@h:1,h2:2"}.Describe()
	if strings.Contains(d, "secret") || !strings.Contains(d, "h:1") || !strings.Contains(d, "h2:2") {
		t.Fatalf("Describe = %q", d)
	}
}

// TestConnectTLS connects to a real TLS-only redis-server with an ACL user and a client certificate,
// and checks that each wrong setting fails at connect with advice naming the setting.
func TestConnectTLS(t *testing.T) {
	s := redistest.StartTLS(t)
	good := redisx.Config{Addr: s.URL(), TLSCAFile: s.PKI.CAFile, TLSCertFile: s.PKI.ClientCertFile, TLSKeyFile: s.PKI.ClientKeyFile}
	c, err := redisx.NewClient(good, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	who, err := c.Do(t.Context(), c.B().AclWhoami().Build()).ToString()
	c.Close()
	if err != nil || who != s.User {
		t.Fatalf("ACL WHOAMI = %q, %v", who, err)
	}

	other := redistest.NewPKI(t)
	wrongCA := good
	wrongCA.TLSCAFile = other.CAFile
	wrongPassword := good
	wrongPassword.Addr = strings.Replace(s.URL(), s.Password, "wrong", 1)
	noCert := good
	noCert.TLSCertFile, noCert.TLSKeyFile = "", ""
	plain := redisx.Config{Addr: s.Addr()}
	for _, c := range []struct {
		name string
		cfg  redisx.Config
		hint string
	}{
		{"wrong CA", wrongCA, "REDIS_TLS_CA_FILE"},
		{"wrong password", wrongPassword, "REDIS_PASSWORD"},
		{"no client certificate", noCert, "REDIS_TLS_CERT_FILE"},
		{"plain text to a TLS port", plain, "TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, err := redisx.NewClient(c.cfg, nil)
			if err == nil {
				client.Close()
				t.Fatal("connected")
			}
			if strings.Contains(err.Error(), s.Password) {
				t.Fatalf("the error shows the password: %v", err)
			}
			if hint := redisx.Explain(err); !strings.Contains(hint, c.hint) {
				t.Fatalf("Explain(%v) = %q; want advice naming %s", err, hint, c.hint)
			}
		})
	}
}
