// Package redistest starts real redis-server processes for tests: a single server, a Redis Cluster
// (with or without replicas), a TLS-only server with an ACL user (tls.go), a Sentinel set
// (sentinel.go), each on free loopback ports in a t.TempDir, with no persistence, and stopped in
// t.Cleanup; and a TCP proxy that can wedge a path (proxy.go). Tests use real servers rather than fakes because what they check — client-side cache
// invalidation, cluster slot routing, behaviour across an outage — is exactly what a fake would get
// wrong. They never touch a Redis already running on the machine (port 6379 is never chosen).
//
// If redis-server (or redis-cli, for a cluster) is not installed the test is skipped; .ci/run
// installs both.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts for starting and stopping servers. Starting is polled: redis-server has no readiness
// signal other than answering PING.
const (
	startTimeout   = 15 * time.Second
	stopTimeout    = 10 * time.Second
	clusterTimeout = 30 * time.Second
	pollInterval   = 10 * time.Millisecond
	dialTimeout    = time.Second
	ioTimeout      = 5 * time.Second
	startAttempts  = 5 // a freshly probed free port can be taken by someone else before we bind it
	reservedPort   = 6379
	skipMessage    = "is not installed; .ci/run installs redis-server and redis-tools"
)

// Server is one redis-server process. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string // extra configuration, e.g. cluster mode
	// first goes before the common flags (redis-server wants a config file first, which a
	// sentinel needs); ping replaces PING on the plain port as the readiness check (TLS, ACL).
	first []string
	ping  func() error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartSingle starts a standalone redis-server on a free port and stops it when the test ends.
func StartSingle(t testing.TB) *Server {
	t.Helper()
	return startServer(t, lookBin(t, "redis-server"), t.TempDir(), nil)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// Stop shuts the server down (SIGTERM; nothing is saved) and waits for it to exit. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.signal(syscall.SIGTERM)
}

// Kill ends the server abruptly (SIGKILL), as a crash would, and waits for it to exit.
func (s *Server) Kill() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is answered, as with a
// hung server or a network partition. Resume undoes it; Stop, Kill and Restart resume it first.
func (s *Server) Pause() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Restart stops the server if it is running and starts it again on the same port, empty (there is
// no persistence), so fault tests can check that clients reconnect by themselves.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart %s: %v", s.Addr(), err)
	}
}

// startServer starts redis-server with extra args on a free port in dir, retrying on a new port
// when the chosen one was taken in the meantime.
func startServer(t testing.TB, bin, dir string, args func(port int) []string, opts ...func(*Server)) *Server {
	t.Helper()
	var lastErr error
	for range startAttempts {
		s := &Server{t: t, bin: bin, dir: dir, port: freePort(t)}
		if args != nil {
			s.args = args(s.port)
		}
		for _, o := range opts {
			o(s)
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// start launches the process and waits until it answers PING.
func (s *Server) start() error {
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.port))
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	cmd := exec.Command(s.bin, slices.Concat(s.first, args, s.args)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("exec %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		err := s.ready()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			s.signal(syscall.SIGKILL)
			return fmt.Errorf("redis-server on port %d not answering PING after %v (last: %v): %s",
				s.port, startTimeout, err, tail(logPath))
		}
		time.Sleep(pollInterval)
	}
}

// ready checks that the server answers.
func (s *Server) ready() error {
	if s.ping != nil {
		return s.ping()
	}
	reply, err := Do(s.Addr(), "PING")
	if err == nil && reply != "PONG" {
		err = fmt.Errorf("PING answered %q", reply)
	}
	return err
}

// signal sends sig to a running server and waits for it to exit, escalating to SIGKILL if it
// takes longer than stopTimeout.
func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to act on SIGTERM
	select {
	case <-done:
		return
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	<-done
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts masters (at least 3, as redis-cli --cluster create requires) cluster-enabled
// servers, joins them with the 16384 slots spread evenly, and waits until every node reports
// cluster_state:ok. Everything is stopped when the test ends.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", masters)
	}
	c := &Cluster{nodes: createCluster(t, masters, 0, 5000)}
	// Slot assignment spreads over the cluster bus by gossip; there is no event to wait for, so
	// poll every node until it sees the whole cluster as healthy.
	deadline := time.Now().Add(clusterTimeout)
	for _, n := range c.nodes {
		for {
			info, err := Do(n.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: %s not cluster_state:ok after %v: %v\n%s", n.Addr(), clusterTimeout, err, info)
			}
			time.Sleep(pollInterval)
		}
	}
	return c
}

// createCluster starts masters*(1+replicas) cluster-enabled servers with the given
// cluster-node-timeout (ms) and joins them with redis-cli --cluster create, the slots spread evenly
// over the masters. Waiting for the cluster to be healthy is the caller's.
func createCluster(t testing.TB, masters, replicas, nodeTimeoutMS int) []*Server {
	t.Helper()
	server := lookBin(t, "redis-server")
	cli := lookBin(t, "redis-cli")
	dir := t.TempDir()
	var nodes []*Server
	for range masters * (1 + replicas) {
		bus := freePort(t)
		nodes = append(nodes, startServer(t, server, dir, func(port int) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", strconv.Itoa(nodeTimeoutMS),
			}
		}))
	}
	args := []string{"--cluster", "create"}
	for _, n := range nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	return nodes
}

// Addrs are the masters' host:port addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Nodes are the masters, for fault tests that stop or restart one of them.
func (c *Cluster) Nodes() []*Server { return c.nodes }

// Stop shuts every node down.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.Stop()
	}
}

// CommandCount returns how many times the server at addr has run cmd (INFO commandstats'
// cmdstat_<cmd> calls=N; subcommands are written "client|tracking"), so a test can prove that a
// code path made no round trip. A command never run counts 0.
func CommandCount(t testing.TB, addr, cmd string) int64 {
	t.Helper()
	info, err := Do(addr, "INFO", "commandstats")
	if err != nil {
		t.Fatalf("redistest: INFO commandstats on %s: %v", addr, err)
	}
	prefix := "cmdstat_" + strings.ToLower(cmd) + ":"
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("redistest: bad commandstats line %q: %v", line, err)
				}
				return n
			}
		}
	}
	return 0
}

// Do sends one command to addr on a fresh connection and returns its reply: a simple string,
// a bulk string ("" for nil), an integer in decimal, or an array as its elements one a line. A Redis
// error reply is returned as an error.
// It exists so the helpers need no client library; tests should use the real client.
func Do(addr string, args ...string) (string, error) {
	return do(addr, ioTimeout, args...)
}

// do is Do with a deadline for the whole exchange.
func do(addr string, timeout time.Duration, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, min(dialTimeout, timeout))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return exchange(conn, timeout, args...)
}

// exchange sends one command on conn and reads its reply, as Do describes.
func exchange(conn net.Conn, timeout time.Duration, args ...string) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad array length %q", line)
		}
		elems := make([]string, 0, max(n, 0))
		for range n {
			e, err := readReply(r)
			if err != nil {
				return "", err
			}
			elems = append(elems, e)
		}
		return strings.Join(elems, "\n"), nil
	default:
		return "", fmt.Errorf("unsupported reply %q", line)
	}
}

// freePort returns a loopback TCP port nobody listens on right now (never 6379).
func freePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != reservedPort {
			return port
		}
	}
}

// lookBin finds an executable on PATH or skips the test.
func lookBin(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("redistest: %s %s", name, skipMessage)
	}
	return p
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
