package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/node"
)

// statusSnap is the part of a status snapshot the tests read.
type statusSnap struct {
	NodeID string `json:"node_id"`
	T      int64  `json:"t"`
	Conns  struct {
		SSE   int64 `json:"sse"`
		Topic int64 `json:"topic"`
	} `json:"conns"`
	Opened    uint64         `json:"opened"`
	Published uint64         `json:"published"`
	BytesSent uint64         `json:"bytes_sent"`
	Extra     map[string]any `json:"extra"`
}

// nextStatus reads the next snapshot from a stream of node.StatusTopic.
func nextStatus(t *testing.T, s *sseStream) statusSnap {
	t.Helper()
	ev := s.next(t)
	if ev.Type != node.StatusEvent {
		t.Fatalf("status stream: event %q, want %q", ev.Type, node.StatusEvent)
	}
	var snap statusSnap
	if err := json.Unmarshal([]byte(ev.Data), &snap); err != nil {
		t.Fatalf("status snapshot %q: %v", ev.Data, err)
	}
	return snap
}

// statusUntil reads snapshots until cond holds; a snapshot comes every second, so a few suffice.
func statusUntil(t *testing.T, s *sseStream, what string, cond func(statusSnap) bool) statusSnap {
	t.Helper()
	var snap statusSnap
	for range 5 {
		if snap = nextStatus(t, s); cond(snap) {
			return snap
		}
	}
	t.Fatalf("status: no snapshot with %s; last %+v", what, snap)
	return snap
}

// statusGet fetches a URL on a client of its own and returns the response and its body.
func statusGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestStatusPage(t *testing.T) {
	srv := start(t, teststack.Config{
		NodeID: "status-node",
		StatusFunctions: func(context.Context) []node.StatusFunction {
			return []node.StatusFunction{{Name: "resize", Breaker: "closed", Invocations: 7}}
		},
	})

	resp, body := statusGet(t, srv.url+"/admin/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /admin/: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if node.StatusTopic != "/_sseedge/status" || !strings.Contains(body, "'/subscribe/_sseedge/status'") || !strings.Contains(body, "new EventSource(") {
		t.Fatalf("the page does not open an EventSource on /subscribe%s", node.StatusTopic)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q should allow the inline script by hash only", csp)
	}
	if strings.Contains(body, "innerHTML") || strings.Contains(body, "insertAdjacentHTML") || strings.Contains(body, "document.write") {
		t.Fatal("the page must render data with textContent only")
	}

	status := openSSE(t, srv.url+"/subscribe"+node.StatusTopic, nil)
	first := nextStatus(t, status)
	if first.NodeID != "status-node" || first.Conns.Topic != 1 || first.Conns.SSE != 0 || first.T == 0 {
		t.Fatalf("first snapshot %+v: want node status-node, the status stream itself as the one topic stream", first)
	}
	if fns, _ := first.Extra["functions"].([]any); len(fns) != 1 || fns[0].(map[string]any)["name"] != "resize" {
		t.Fatalf("StatusFunctions missing from snapshot: %+v", first.Extra)
	}

	// Counts follow streams opening and closing, and publishes are counted.
	pets := openSSE(t, srv.url+"/subscribe/pets", nil)
	client := openSSE(t, srv.url+"/sse/c1", nil)
	publish(t, srv, "/pets", "news", "hello")
	statusUntil(t, status, "2 topic streams, 1 client stream and the publish", func(s statusSnap) bool {
		return s.Conns.Topic == 2 && s.Conns.SSE == 1 && s.Opened == first.Opened+2 && s.Published == first.Published+1
	})
	pets.Close()
	client.Close()
	statusUntil(t, status, "the two streams gone", func(s statusSnap) bool { return s.Conns.Topic == 1 && s.Conns.SSE == 0 })

	// The status topic is the edge's own: nobody else may publish on it.
	code, out := post(t, srv.url+"/publish"+node.StatusTopic, `{"data":"spoof"}`)
	if code != http.StatusForbidden {
		t.Fatalf("publish to the status topic: %d %v", code, out)
	}
}

func TestStatusPageAdminToken(t *testing.T) {
	srv := start(t, teststack.Config{AdminAuth: auth.NewAdminAuth("s3cret")})

	if resp, body := statusGet(t, srv.url+"/admin/"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"code"`) {
		t.Fatalf("GET /admin/ without token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := statusGet(t, srv.url+"/admin/?token=s3cret"); resp.StatusCode != 200 {
		t.Fatalf("GET /admin/?token=: %d", resp.StatusCode)
	}
	if resp, _ := statusGet(t, srv.url+"/subscribe"+node.StatusTopic); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status stream without token: %d", resp.StatusCode)
	}
	status := openSSE(t, srv.url+"/subscribe"+node.StatusTopic+"?token=s3cret", nil)
	if snap := nextStatus(t, status); snap.Conns.Topic != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
}

// chromiumPath finds the headless browser of TestStatusPageBrowser, installing it on CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	const path = "/usr/bin/chromium"
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if os.Geteuid() != 0 || (os.Getenv("CI") != "true" && os.Getenv("SSEEDGE_INSTALL_CHROMIUM") != "1") {
		t.Skip("no Chromium at " + path + ": run `apt-get install -y chromium`, or run the tests as root with CI=true or SSEEDGE_INSTALL_CHROMIUM=1 to let this test install it")
	}
	t.Log("installing chromium with apt-get")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "chromium"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("chromium installed but %s is missing: %v", path, err)
	}
	return path
}

// lockedBuffer collects the browser's output, written from the allocator's goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStatusPageBrowser loads the status page in headless Chromium and watches it follow the node live:
// data is rendered as text (the node ID and a function name are markup that must not be parsed), the
// topic count rises when streams open, and the page logs no error.
func TestStatusPageBrowser(t *testing.T) {
	exe := chromiumPath(t)
	const nodeID = `edge-<b>7</b> & "co"`
	const fnName = `<img src=x onerror="console.error('xss')">`
	var calls atomic.Uint64
	srv := start(t, teststack.Config{
		NodeID:    nodeID,
		AdminAuth: auth.NewAdminAuth("s3cret"), // the page must pass its ?token= on to its stream
		StatusFunctions: func(context.Context) []node.StatusFunction {
			n := calls.Add(5)
			return []node.StatusFunction{
				{Name: fnName, Breaker: "open", Invocations: n, Failures: n / 5},
				{Name: "resize", Breaker: "closed", Invocations: 2 * n},
			}
		},
	})

	var (
		mu       sync.Mutex
		problems []string
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	listener := func(ev any) { // runs on chromedp's reader goroutine: record and return
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problem("console.error: %s", strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problem("exception at %s:%d: %s", d.URL, d.LineNumber, msg)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problem("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
	}

	var output lockedBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&output),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(listener))
	closed := false
	closeBrowser := func() {
		if closed {
			return
		}
		closed = true
		_ = chromedp.Cancel(ctx)
		cancelCtx()
		cancelAlloc() // waits for the browser process
	}
	defer closeBrowser() // before the cleanups of start: the server shuts down after the browser is gone

	started := time.Now()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, on a context without deadline
		t.Fatalf("starting %s: %v\n%s", exe, err, output.String())
	}
	t.Logf("browser up in %v", time.Since(started).Round(time.Millisecond))
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if err := chromedp.Do(tctx, chromedp.Navigate(srv.url+"/admin/?token=s3cret")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	// eval runs a script that returns a string.
	eval := func(js string) (string, error) { return chromedp.Run(tctx, chromedp.Evaluate[string](js)) }
	text := func(id string) (string, error) {
		return eval(`(document.getElementById(` + strconv.Quote(id) + `) || {}).textContent || ''`)
	}
	waitFor := func(what, id string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := text(id)
			if err == nil && ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("page: timed out waiting for %s: #%s is %q (err %v); console problems: %q", what, id, got, err, problems)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	count := func(s string) (int, bool) {
		n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		return n, err == nil
	}

	waitFor("the node ID", "node-id", func(s string) bool { return s == nodeID })
	before, _ := count(waitFor("a topic count", "conn-topic", func(s string) bool { n, ok := count(s); return ok && n >= 1 }))
	t.Logf("page shows node and %d topic streams %v after start", before, time.Since(started).Round(time.Millisecond))

	for i := range 3 {
		openSSE(t, srv.url+"/subscribe/pets/"+strconv.Itoa(i), nil)
	}
	waitFor("the topic count to rise by 3", "conn-topic", func(s string) bool { n, ok := count(s); return ok && n == before+3 })
	waitFor("a publish rate", "publish-rate", func(s string) bool { return strings.HasSuffix(s, "/s") })
	waitFor("a bytes rate", "bytes-rate", func(s string) bool { return strings.HasSuffix(s, "B/s") })
	waitFor("the functions with rates", "functions", func(s string) bool {
		return strings.Contains(s, fnName+"open") && strings.Contains(s, "resize") && strings.Contains(s, "/s")
	})
	waitFor("the stream state", "state", func(s string) bool { return s == "live" })

	// Data must have stayed text: no element was made from the node ID or the function name.
	if n, err := eval(`String(document.querySelectorAll('#node-id *, #functions img, #functions b').length)`); err != nil || n != "0" {
		t.Fatalf("data was parsed as markup: %s elements (err %v)", n, err)
	}
	if title, err := eval(`document.title`); err != nil || title != "sseedge · "+nodeID {
		t.Fatalf("title %q (err %v)", title, err)
	}

	closeBrowser()
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(problems, "\n"))
	}
	t.Logf("done in %v", time.Since(started).Round(time.Millisecond))
}
