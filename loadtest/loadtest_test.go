package main

import (
	"bytes"
	"context"
	"encoding/json"
	"expvar"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/loadtest/internal/basesrv"
	"github.com/sseedge/sseedge/loadtest/internal/floorsrv"
)

// startBaseline serves the baseline server's handler on a loopback port for the duration of the test.
func startBaseline(t *testing.T) string {
	t.Helper()
	srv := basesrv.New(basesrv.Config{Heartbeat: 50 * time.Millisecond}, expvar.Handler())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func testFlags(url, client string) clientFlags {
	return clientFlags{url: url, client: client, pollers: 2, conc: 16, srcIPs: 8, delay: 200 * time.Microsecond,
		callFlags: callFlags{timeout: 30 * time.Second, json: true}}
}

func TestIdleAgainstBaseline(t *testing.T) {
	url := startBaseline(t)
	for _, client := range []string{"epoll", "goroutine"} {
		t.Run(client, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := idleConfig{clientFlags: testFlags(url, client), n: 50, pid: os.Getpid(), path: "/subscribe/idle",
				hold: 120 * time.Millisecond} // long enough for heartbeats, which must not disturb anything
			res, err := runIdle(context.Background(), cfg, output{w: &buf, jsonOnly: true})
			if err != nil {
				t.Fatalf("runIdle: %v (%+v)", err, res)
			}
			if res.Established != 50 || res.Failed != 0 || res.ClosedByServer != 0 || res.WithBody != 50 {
				t.Fatalf("established %d failed %d closed %d with body %d", res.Established, res.Failed, res.ClosedByServer, res.WithBody)
			}
			if res.VarsError != "" || res.HeapAfter == 0 {
				t.Fatalf("no Go memory figures: %q", res.VarsError)
			}
			if res.ServerRSSAfter == 0 || res.ConnectRate <= 0 {
				t.Fatalf("missing figures: %+v", res)
			}
		})
	}
}

func TestFanoutAgainstBaseline(t *testing.T) {
	url := startBaseline(t)
	for _, client := range []string{"epoll", "goroutine"} {
		for _, rate := range []float64{0, 400} {
			t.Run(client+"/"+rateText(rate), func(t *testing.T) {
				var buf bytes.Buffer
				cfg := fanoutConfig{clientFlags: testFlags(url, client), topic: "/pets", subs: 50, events: 20,
					rate: rate, inflight: 2, window: 4, drain: 5 * time.Second}
				res, err := runFanout(context.Background(), cfg, output{w: &buf, jsonOnly: true})
				if err != nil {
					t.Fatalf("runFanout: %v (%+v)", err, res)
				}
				if res.Established != 50 || res.Missing != 0 || res.Duplicates != 0 || res.Unstamped != 0 ||
					res.Delivered != 50*20 || res.Published != 20 {
					t.Fatalf("result %+v", res)
				}
				if res.DeliveriesPerSec <= 0 || res.LatencyP99 <= 0 || res.LatencyP99 < res.LatencyP50 {
					t.Fatalf("figures %+v", res)
				}
			})
		}
	}
}

// TestFanoutReportsMissing proves the check has teeth: subscribers of a sibling topic see nothing.
func TestFanoutReportsMissing(t *testing.T) {
	url := startBaseline(t)
	cfg := fanoutConfig{clientFlags: testFlags(url, "epoll"), topic: "/a", subs: 5, events: 3, inflight: 1,
		drain: 300 * time.Millisecond}
	cfg.timeout = 3 * time.Second
	// The publisher talks to a fake endpoint that forwards only the probes and acknowledges, but
	// swallows, every measured event.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish/a", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte("-probe")) { // let the probe through so the run starts
			resp, err := http.Post(url+"/publish/a", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
			}
		}
		io.WriteString(w, `{"id":"x"}`)
	})
	pubSrv := httptest.NewServer(mux)
	defer pubSrv.Close()
	cfg.publishURL = pubSrv.URL
	res, err := runFanout(context.Background(), cfg, output{w: io.Discard, jsonOnly: true})
	if err == nil || res.Missing != 15 {
		t.Fatalf("err %v, missing %d; want an error and 15 missing", err, res.Missing)
	}
}

func TestInvoke(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, r.Body)
	}))
	defer fn.Close()
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/invoke/echo" {
			http.NotFound(w, r)
			return
		}
		var in struct{ Payload json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := http.Post(fn.URL, "application/json", bytes.NewReader(in.Payload))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	}))
	defer edge.Close()
	cfg := invokeConfig{url: edge.URL, fn: "echo", n: 200, c: 4, warmup: 5, payload: `{"a":1}`, direct: fn.URL,
		callFlags: callFlags{timeout: 30 * time.Second}}
	res, err := runInvoke(context.Background(), cfg, output{w: io.Discard, jsonOnly: true})
	if err != nil {
		t.Fatalf("runInvoke: %v", err)
	}
	if res.OK != 200 || res.DirectOK != 200 || res.PerSec <= 0 || res.P99 < res.P50 || res.DirectP50 <= 0 {
		t.Fatalf("result %+v", res)
	}
	cfg.fn = "missing"
	cfg.direct = ""
	if res, err := runInvoke(context.Background(), cfg, output{w: io.Discard, jsonOnly: true}); err == nil || res.OK != 0 {
		t.Fatalf("a 404 function passed: %+v", res)
	}
}

// TestRunCLI drives the command line end to end: flags, the JSON-only summary and the exit code.
func TestRunCLI(t *testing.T) {
	url := startBaseline(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"fanout", "-url", url, "-subs", "10", "-events", "5", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var sum fanoutResult
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &sum) != nil || sum.Delivered != 50 {
		t.Fatalf("-json output %q", out.String())
	}
	if code := run(context.Background(), []string{"bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("bogus mode exit %d", code)
	}
	if code := run(context.Background(), []string{"invoke", "-url", url}, &out, &errOut); code != 2 {
		t.Fatalf("invoke without -fn exit %d", code)
	}
}

// TestIdleReportsFailures points the client at a port nobody listens on: every stream fails, the run
// says so, and the error is summarised rather than repeated per stream.
func TestIdleReportsFailures(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	cfg := idleConfig{clientFlags: testFlags(url, "epoll"), n: 20, path: "/subscribe/x"}
	res, err := runIdle(context.Background(), cfg, output{w: io.Discard, jsonOnly: true})
	if err == nil || res.Established != 0 || res.Failed != 20 || len(res.Errors) != 1 ||
		!strings.Contains(res.Errors[0], "20x") {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

// TestIdleRejectsNonStream checks that a 404 head is not counted as an established stream.
func TestIdleRejectsNonStream(t *testing.T) {
	url := startBaseline(t)
	cfg := idleConfig{clientFlags: testFlags(url, "goroutine"), n: 5, path: "/nope"}
	res, err := runIdle(context.Background(), cfg, output{w: io.Discard, jsonOnly: true})
	if err == nil || res.Established != 0 || res.Failed != 5 {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

// TestFanoutAgainstFloor runs the fanout load against the floor server twice on one process: every frame
// arrives, and the streams of the first run, gone when it ends, are forgotten by the first publish that
// finds them closed.
func TestFanoutAgainstFloor(t *testing.T) {
	testutil.LeakCheck(t)
	srv := floorsrv.New(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	for run := range 2 {
		var buf bytes.Buffer
		cfg := fanoutConfig{clientFlags: testFlags(url, "epoll"), topic: "/pets", subs: 50, events: 20,
			rate: 400, inflight: 2, window: 4, drain: 5 * time.Second}
		res, err := runFanout(context.Background(), cfg, output{w: &buf, jsonOnly: true})
		if err != nil {
			t.Fatalf("run %d: runFanout: %v (%+v)", run, err, res)
		}
		if res.Established != 50 || res.Missing != 0 || res.Duplicates != 0 || res.Delivered != 50*20 {
			t.Fatalf("run %d: result %+v", run, res)
		}
	}
	// The second run's streams are closed too: the first write to each reaches a closed peer, the next
	// one fails, and the stream is forgotten.
	publish := func(body string) (int, string) {
		resp, err := http.Post(url+"/publish/pets", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.WaitFor(t, "the floor server to forget the closed streams", func() bool {
		if status, body := publish(`{"event":"x","data":{"n":1}}`); status != http.StatusOK {
			t.Fatalf("publish: %d %s", status, body)
		}
		return srv.Stats().Subscribers == 0
	})
	if status, body := publish(`{"data":`); status != http.StatusBadRequest || !strings.Contains(body, `"code":"bad_event"`) {
		t.Fatalf("bad body: status %d %s", status, body)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestChurnAgainstBaseline: streams opening and closing in a loop against the baseline server while two
// stay; the two get every event of their topic once, in order (their heartbeats, numeric too, are not
// taken for events), and the opens are counted. The baseline has no bus: its commands read as 0.
func TestChurnAgainstBaseline(t *testing.T) {
	url := startBaseline(t)
	cfg := churnConfig{url: url, streams: 20, roots: 5, stay: 2, duration: 400 * time.Millisecond, rate: 200,
		srcIPs: 8, callFlags: callFlags{timeout: 30 * time.Second}}
	res, err := runChurn(context.Background(), cfg, output{w: io.Discard, jsonOnly: true})
	if err != nil {
		t.Fatalf("runChurn: %v (%+v)", err, res)
	}
	if res.Opens < int64(cfg.streams) || res.OpenErrors != 0 || res.Published < 2 {
		t.Fatalf("result %+v", res)
	}
	if res.StayedWanted != res.Published || res.StayedGot != res.StayedWanted || res.StayedMissing != 0 || res.OutOfOrder != 0 {
		t.Fatalf("the streams that stayed: %+v", res)
	}
	cfg.stay = 6
	if _, err := runChurn(context.Background(), cfg, output{w: io.Discard, jsonOnly: true}); err == nil {
		t.Fatal("more streams to stay than roots was accepted")
	}
}
