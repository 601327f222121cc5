package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseedge/sseedge/internal/testutil"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// edgeBinary builds cmd/edge once for the package's tests.
func edgeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sseedge-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "edge")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// edgeNode is one edge process.
type edgeNode struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan error
}

// startNode runs an edge process with env and waits until it listens.
func startNode(t *testing.T, name string, env ...string) *edgeNode {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(edgeBinary(t))
	cmd.Env = append(os.Environ(), append([]string{"PORT=" + port, "NODE_ID=" + name, "HEARTBEAT_INTERVAL=500ms",
		"MAX_STREAMS_PER_IP=0", "LOG_LEVEL=info"}, env...)...)
	logs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &edgeNode{name: name, url: "http://127.0.0.1:" + port, cmd: cmd, done: make(chan error, 1)}
	lines := bufio.NewScanner(logs)
	waitLine(t, lines, "sseedge listening")
	go func() {
		io.Copy(io.Discard, logs)
		n.done <- cmd.Wait()
	}()
	t.Cleanup(n.stop)
	return n
}

func (n *edgeNode) stop() {
	if n.cmd.ProcessState == nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			n.cmd.Process.Kill()
			<-n.done
		}
	}
}

// kill ends the node at once, as a crash would.
func (n *edgeNode) kill() {
	n.cmd.Process.Kill()
	<-n.done
}

// request sends a JSON request and returns the status and decoded body.
func request(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// subscriber reads one stream with an independent SSE parser (testutil.SSEStream).
type subscriber struct{ *testutil.SSEStream }

func subscribe(t *testing.T, url, lastID string) *subscriber {
	t.Helper()
	h := http.Header{}
	if lastID != "" {
		h.Set("Last-Event-ID", lastID)
	}
	return &subscriber{testutil.OpenSSE(t, url, h)}
}

// next returns the next block (heartbeats aside), or ok false when the stream ended.
func (s *subscriber) next(t *testing.T) (sse.Event, bool) {
	t.Helper()
	return s.Block(t)
}

// functionServer answers /upper with the uppercased text of {"text": ...}.
func functionServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Text string }
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"text": strings.ToUpper(in.Text)})
	}))
	t.Cleanup(srv.Close)
	return srv
}
