// Package redisx turns a node's Redis settings (REDIS_ADDR as host:port lists or redis:// and
// rediss:// URLs, an ACL user, TLS files, Sentinel) into one rueidis client. It is the only place
// the edge builds a Redis client, so every part of a node (bus, registry, directory, sessions)
// reaches Redis the same way. It writes no connection logic of its own: URLs go through
// rueidis.ParseURL, Sentinel through rueidis's SentinelOption, TLS through crypto/tls.
package redisx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Client settings. A dead server is reported at once and a hung one within seconds, not minutes.
const (
	dialTimeout  = 2 * time.Second
	keepAlive    = time.Second
	writeTimeout = 3 * time.Second // also bounds a pipeline's wait on an unresponsive server
	retries      = 2               // extra attempts of a read after a network error
	retryDelay   = 5 * time.Millisecond
	// sentinelRefresh re-reads the master from the sentinels even without a +switch-master event,
	// which a client can miss while its sentinel connection is being replaced.
	sentinelRefresh = 5 * time.Second
)

// Config is what an operator sets; the zero value means "no Redis" (Enabled is false).
type Config struct {
	// Addr is REDIS_ADDR: host:port entries or redis:// and rediss:// URLs, comma-separated. One
	// entry is a standalone server (or any node of a cluster); several are cluster nodes.
	Addr     string
	Username string // ACL user; a user in the URL is used when this is empty
	Password string // a password in the URL is used when this is empty

	TLSCAFile     string // PEM bundle that verifies the server (default: the system roots)
	TLSCertFile   string // client certificate for mutual TLS, with TLSKeyFile
	TLSKeyFile    string
	TLSServerName string // name the server's certificate must carry (default: each dialed host)
	TLSInsecure   bool   // skip verifying the server's certificate (logged as a warning)

	// SentinelAddr (comma-separated host:port) and SentinelMaster replace Addr: the client asks
	// the sentinels for the master and follows failovers.
	SentinelAddr     string
	SentinelMaster   string
	SentinelPassword string
}

// Enabled reports whether Redis is configured at all.
func (c Config) Enabled() bool { return c.Addr != "" || c.SentinelAddr != "" }

// tlsRequested reports whether any TLS setting asks for TLS without a rediss:// URL.
func (c Config) tlsRequested() bool {
	return c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSServerName != "" || c.TLSInsecure
}

// Options builds the rueidis options for c. It reads the TLS files, so a missing or malformed file is
// reported here, before any connection. log receives the warning of TLSInsecure.
func (c Config) Options(log *slog.Logger) (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	if c.Addr != "" && c.SentinelAddr != "" {
		return opt, errors.New("redisx: set REDIS_ADDR or REDIS_SENTINEL_ADDR, not both")
	}
	if (c.SentinelAddr == "") != (c.SentinelMaster == "") {
		return opt, errors.New("redisx: REDIS_SENTINEL_ADDR and REDIS_SENTINEL_MASTER go together")
	}
	if c.SentinelAddr != "" {
		opt.InitAddress = split(c.SentinelAddr)
		opt.Sentinel.MasterSet = c.SentinelMaster
		opt.Sentinel.Password = c.SentinelPassword
		opt.Sentinel.TopologyRefreshInterval = sentinelRefresh
	} else {
		var err error
		if opt, err = parseAddrs(split(c.Addr)); err != nil {
			return opt, err
		}
	}
	if len(opt.InitAddress) == 0 {
		return opt, errors.New("redisx: no Redis address")
	}
	if err := mergeCredential("REDIS_USERNAME", &opt.Username, c.Username); err != nil {
		return opt, err
	}
	if err := mergeCredential("REDIS_PASSWORD", &opt.Password, c.Password); err != nil {
		return opt, err
	}
	if opt.TLSConfig == nil && c.tlsRequested() {
		if strings.Contains(c.Addr, "redis://") || strings.Contains(c.Addr, "valkey://") {
			return opt, errors.New("redisx: REDIS_TLS_* settings given with a redis:// address: use rediss:// for TLS")
		}
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if opt.TLSConfig != nil {
		if err := c.configureTLS(opt.TLSConfig, log); err != nil {
			return opt, err
		}
		if c.SentinelAddr != "" {
			opt.Sentinel.TLSConfig = opt.TLSConfig // sentinels of a TLS deployment speak TLS too
		}
	}
	opt.ShuffleInit = true // nodes of a cluster do not all bootstrap from the first address
	opt.Dialer = net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	opt.Sentinel.Dialer = opt.Dialer
	opt.ConnWriteTimeout = writeTimeout
	opt.RetryDelay = retry
	return opt, nil
}

// NewClient connects to Redis as c says. rueidis dials at once, so a wrong address, CA or password
// fails here; Explain turns such an error into advice for the log.
func NewClient(c Config, log *slog.Logger) (rueidis.Client, error) {
	opt, err := c.Options(log)
	if err != nil {
		return nil, err
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisx: connect to %s: %w", c.Describe(), err)
	}
	return client, nil
}

// Buffers of NewPubSubClient's connections: a partition's pub/sub connection reads messages of a few
// hundred bytes (rueidis reads a longer bulk string into a slice of its own) and writes batches of
// SSUBSCRIBEs, so rueidis's default 0.5 MiB each way (about 1.4 MiB a connection with its ring) is
// idle memory; these make it about 0.12 MiB.
const (
	PubSubBuffer    = 16 << 10
	PubSubRingScale = 8
)

// NewPubSubClient connects to Redis as NewClient does, for connections that carry pub/sub only (the
// bus engine's per-partition connections): small buffers, no client-side cache.
func NewPubSubClient(c Config, log *slog.Logger) (rueidis.Client, error) {
	opt, err := c.Options(log)
	if err != nil {
		return nil, err
	}
	opt.ReadBufferEachConn, opt.WriteBufferEachConn, opt.RingScaleEachConn = PubSubBuffer, PubSubBuffer, PubSubRingScale
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisx: connect to %s for pub/sub: %w", c.Describe(), err)
	}
	return client, nil
}

// Describe names the Redis deployment for logs, with any password in a URL redacted.
func (c Config) Describe() string {
	if c.SentinelAddr != "" {
		return fmt.Sprintf("sentinel %s master %q", c.SentinelAddr, c.SentinelMaster)
	}
	entries := split(c.Addr)
	for i, a := range entries {
		if u, err := url.Parse(a); err == nil && u.User != nil {
			entries[i] = u.Redacted()
		}
	}
	return strings.Join(entries, ",")
}

// Explain says, for an error of NewClient, which setting to look at; "" when it has no advice.
func Explain(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case err == nil:
		return ""
	case errors.As(err, &hostname):
		return "the server's certificate does not name this host: set REDIS_TLS_SERVER_NAME to a name it carries"
	case errors.As(err, &unknownCA), errors.As(err, &verify):
		return "the server's certificate is not signed by a trusted CA: check REDIS_TLS_CA_FILE"
	case errors.As(err, &record):
		return "the server does not speak TLS: use redis:// (or drop the REDIS_TLS_* settings), or the server's TLS port"
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		return "Redis refused the credentials: check REDIS_USERNAME and REDIS_PASSWORD (or the user:password in REDIS_ADDR)"
	case strings.Contains(msg, "NOPERM"):
		return "the ACL user lacks a permission the edge needs: it needs ~* (or the key prefix), &* and +@all minus what you must forbid"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return "the server wants a client certificate it trusts: set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE"
	case strings.Contains(msg, "connection reset by peer"), strings.Contains(msg, "tls:") && strings.HasSuffix(msg, "EOF"):
		return "Redis closed the connection during the handshake: it may want a client certificate (REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE), or TLS was used on a plain port or not used on a TLS one (rediss://)"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "no such host"):
		return "Redis is not reachable at that address: check REDIS_ADDR (or REDIS_SENTINEL_ADDR) and the network"
	}
	return ""
}

// parseAddrs reads REDIS_ADDR entries: URLs through rueidis.ParseURL (the first one gives the
// user, password, database and TLS; every one adds its address), plain host:port as they are.
func parseAddrs(entries []string) (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	var scheme string
	for i, a := range entries {
		if !strings.Contains(a, "://") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return opt, fmt.Errorf("redisx: REDIS_ADDR entry %d is neither host:port nor a URL: %w", i+1, err)
			}
			opt.InitAddress = append(opt.InitAddress, a)
			continue
		}
		u, err := url.Parse(a)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the URL, password included
			}
			return opt, fmt.Errorf("redisx: REDIS_ADDR entry %d is not a valid URL: %w", i+1, err)
		}
		if scheme != "" && canonicalScheme(u.Scheme) != scheme {
			return opt, errors.New("redisx: REDIS_ADDR mixes redis:// and rediss:// entries")
		}
		o, err := rueidis.ParseURL(a)
		if err != nil {
			return opt, fmt.Errorf("redisx: REDIS_ADDR entry %d (%s): %w", i+1, u.Redacted(), err)
		}
		if scheme == "" {
			scheme = canonicalScheme(u.Scheme)
			addrs := opt.InitAddress
			opt = o
			opt.InitAddress = append(addrs, o.InitAddress...)
			if opt.TLSConfig != nil {
				// ParseURL names the first URL's host; crypto/tls names each dialed host when
				// this is empty, which is what a cluster's other nodes need.
				opt.TLSConfig.ServerName = ""
			}
			continue
		}
		opt.InitAddress = append(opt.InitAddress, o.InitAddress...)
	}
	if scheme == "tls" && opt.TLSConfig == nil {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opt, nil
}

func canonicalScheme(s string) string {
	if s == "rediss" || s == "valkeys" {
		return "tls"
	}
	return "plain"
}

// configureTLS adds the CA, the client certificate, the server name and the insecure switch to cfg.
func (c Config) configureTLS(cfg *tls.Config, log *slog.Logger) error {
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return fmt.Errorf("redisx: REDIS_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("redisx: REDIS_TLS_CA_FILE %s holds no PEM certificate", c.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("redisx: REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together")
	}
	if c.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("redisx: REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if c.TLSServerName != "" {
		cfg.ServerName = c.TLSServerName
	}
	if c.TLSInsecure {
		cfg.InsecureSkipVerify = true
	}
	if cfg.InsecureSkipVerify && log != nil { // REDIS_TLS_INSECURE or ?skip_verify in the URL
		log.Warn("Redis TLS certificate verification is off (REDIS_TLS_INSECURE): anyone on the path can read and change this node's Redis traffic")
	}
	return nil
}

// mergeCredential sets *dst (from the URL) to the setting when the URL has none, and refuses two
// different values rather than guess which one the operator meant.
func mergeCredential(name string, dst *string, setting string) error {
	switch {
	case setting == "":
	case *dst == "":
		*dst = setting
	case *dst != setting:
		return fmt.Errorf("redisx: %s differs from the one in REDIS_ADDR", name)
	}
	return nil
}

// retry lets rueidis retry a read that hit a network error a couple of times, quickly (enough to
// ride over one broken connection being replaced), then give up, so an outage fails fast instead of
// retrying until the deadline while callers pile up.
func retry(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts > retries {
		return -1
	}
	return retryDelay
}

// split cuts a comma-separated list, dropping blanks.
func split(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
