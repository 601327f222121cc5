package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// PKI is a test certificate authority and the certificates it issued, as PEM files in a t.TempDir:
// a server certificate for 127.0.0.1 and localhost, and a client certificate for mutual TLS. It is
// made in Go (crypto/x509), so tests need no openssl. Two PKIs never trust each other, which is
// how a test gives a node the wrong CA.
type PKI struct {
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string

	pool   *x509.CertPool
	client tls.Certificate
}

// pkiLifetime covers any test run; the certificates are thrown away with the temp dir.
const pkiLifetime = 24 * time.Hour

// NewPKI makes a CA and issues the server and client certificates.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
		pool:           x509.NewCertPool(),
	}
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "sseedge test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(pkiLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("redistest: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("redistest: parse CA certificate: %v", err)
	}
	p.pool.AddCert(ca)
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)

	issue := func(name string, usage []x509.ExtKeyUsage, certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: serial(t),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(pkiLifetime),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  usage,
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("redistest: %s certificate: %v", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("redistest: %s key: %v", name, err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	}
	// The server's certificate is also its client certificate toward replicas and the cluster bus.
	issue("redis", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, p.ServerCertFile, p.ServerKeyFile)
	issue("sseedge", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, p.ClientCertFile, p.ClientKeyFile)
	if p.client, err = tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKeyFile); err != nil {
		t.Fatalf("redistest: load client certificate: %v", err)
	}
	return p
}

// ClientConfig is a TLS client configuration that trusts the CA and presents the client certificate.
func (p *PKI) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatalf("redistest: serial number: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("redistest: write %s: %v", path, err)
	}
}

// TLSServer is a redis-server that speaks only TLS, requires a client certificate the PKI issued,
// and knows one ACL user (the default user is off), as a managed Redis with in-transit encryption
// and AUTH would.
type TLSServer struct {
	*Server
	PKI      *PKI
	User     string
	Password string
}

// StartTLS starts a TLS-only redis-server with a fresh PKI and an ACL user, and stops it when the
// test ends. The redis-server build must have TLS (Debian's has).
func StartTLS(t testing.TB) *TLSServer {
	t.Helper()
	ts := &TLSServer{PKI: NewPKI(t), User: "edge", Password: rand.Text()}
	ts.Server = startServer(t, lookBin(t, "redis-server"), t.TempDir(), func(port int) []string {
		return []string{
			"--port", "0", // overrides the plain port: TLS only
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", ts.PKI.ServerCertFile,
			"--tls-key-file", ts.PKI.ServerKeyFile,
			"--tls-ca-cert-file", ts.PKI.CAFile,
			"--tls-auth-clients", "yes",
			"--user", "default", "off",
			"--user", ts.User, "on", ">" + ts.Password, "~*", "&*", "+@all",
		}
	}, func(s *Server) {
		s.ping = func() error {
			reply, err := doTLS(s.Addr(), ts.PKI.ClientConfig(), ts.User, ts.Password, "PING")
			if err == nil && reply != "PONG" {
				err = fmt.Errorf("PING answered %q", reply)
			}
			return err
		}
	})
	return ts
}

// URL is the server's rediss:// URL with the ACL user and password.
func (s *TLSServer) URL() string {
	return (&url.URL{Scheme: "rediss", User: url.UserPassword(s.User, s.Password), Host: s.Addr()}).String()
}

// Do runs one command over TLS as the ACL user, on a fresh connection; replies as with Do.
func (s *TLSServer) Do(args ...string) (string, error) {
	return doTLS(s.Addr(), s.PKI.ClientConfig(), s.User, s.Password, args...)
}

// doTLS runs one command on a fresh TLS connection to addr after AUTH user password.
func doTLS(addr string, cfg *tls.Config, user, password string, args ...string) (string, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := exchange(conn, ioTimeout, "AUTH", user, password); err != nil {
		return "", fmt.Errorf("AUTH: %w", err)
	}
	return exchange(conn, ioTimeout, args...)
}
