// Command bench is what `make bench` runs: it builds the baseline server, the sseedge edge and the load
// generator, runs the same short idle and fanout loads against a fresh process of each server, and
// prints the comparison table of DESIGN.md's performance targets:
//
//	figure | baseline | sseedge | ratio | floor
//
// The ratio is always "how many times better sseedge is" (baseline/sseedge for costs, sseedge/baseline
// for rates). The floor column is the paced fanout load against the baseline binary's -floor server,
// which only writes each frame to every socket: the latency this machine and load client allow whatever
// the server. (Flat out it is no floor: sseedge batches queued frames into one writev, the floor does
// not.) When ./cmd/edge does not build yet, the sseedge column is a second baseline run, and the
// table says so. Every process it starts is killed when it exits, however it exits (process groups
// plus PR_SET_PDEATHSIG). Settings come from the environment:
//
//	IDLE_N=2000 FANOUT_SUBS=2000 FANOUT_EVENTS=100 FANOUT_RATE=20 BENCH_TIMEOUT=170s
//	BENCH_RESULTS=loadtest/results (raw JSON of each run; empty disables) EDGE_PKG=./cmd/edge
//
// FANOUT_RATE paces a second fanout run (events per second) to measure latency below saturation; 0
// skips it. Linux only.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// settings are the knobs read from the environment.
type settings struct {
	idleN, subs, events int
	rate                float64
	timeout             time.Duration
	results             string
	edgePkg             string
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

func readSettings() (settings, error) {
	s := settings{rate: 20, timeout: 170 * time.Second, results: "loadtest/results", edgePkg: "./cmd/edge"}
	if v := os.Getenv("EDGE_PKG"); v != "" {
		s.edgePkg = v
	}
	var err, e error
	s.idleN, e = envInt("IDLE_N", 2000)
	err = errors.Join(err, e)
	s.subs, e = envInt("FANOUT_SUBS", 2000)
	err = errors.Join(err, e)
	s.events, e = envInt("FANOUT_EVENTS", 100)
	err = errors.Join(err, e)
	if v := os.Getenv("FANOUT_RATE"); v != "" {
		if s.rate, e = strconv.ParseFloat(v, 64); e != nil || s.rate < 0 {
			err = errors.Join(err, fmt.Errorf("FANOUT_RATE=%q: want a number >= 0", v))
		}
	}
	if v := os.Getenv("BENCH_TIMEOUT"); v != "" {
		if s.timeout, e = time.ParseDuration(v); e != nil {
			err = errors.Join(err, fmt.Errorf("BENCH_TIMEOUT: %w", e))
		}
	}
	if v, ok := os.LookupEnv("BENCH_RESULTS"); ok {
		s.results = v
	}
	return s, err
}

// target is one server under test.
type target struct {
	name  string
	bin   string
	args  []string        // the server's own arguments
	only  map[string]bool // the runs it takes part in; nil: all
	note  string
	runs  map[string]map[string]any // run name -> JSON summary
	fails []string
}

func run() error {
	cfg, err := readSettings()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sseedge-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	logf("building into %s", tmp)
	bins := map[string]string{}
	for _, pkg := range []string{"./loadtest", "./loadtest/baseline", cfg.edgePkg} {
		out := filepath.Join(tmp, filepath.Base(pkg))
		if err := build(ctx, root, pkg, out); err != nil {
			if pkg == cfg.edgePkg {
				logf("WARNING: %v", err)
				continue
			}
			return err
		}
		bins[pkg] = out
	}
	base := &target{name: "baseline", bin: bins["./loadtest/baseline"]}
	edge := &target{name: "sseedge", bin: bins[cfg.edgePkg]}
	floor := &target{name: "floor", bin: base.bin, args: []string{"-floor"}, only: map[string]bool{"paced": true}}
	if edge.bin == "" {
		edge.bin = base.bin
		edge.note = cfg.edgePkg + " did not build: the sseedge column is a second baseline run"
	}

	runs := []struct {
		name string
		args []string
	}{
		{"idle", []string{"idle", "-n", strconv.Itoa(cfg.idleN), "-path", "/subscribe/bench/idle"}},
		{"fanout", []string{"fanout", "-subs", strconv.Itoa(cfg.subs), "-events", strconv.Itoa(cfg.events), "-topic", "/bench/fanout"}},
	}
	if cfg.rate > 0 {
		runs = append(runs, struct {
			name string
			args []string
		}{"paced", []string{"fanout", "-subs", strconv.Itoa(cfg.subs), "-events", strconv.Itoa(cfg.events),
			"-topic", "/bench/paced", "-rate", strconv.FormatFloat(cfg.rate, 'f', -1, 64)}})
	}
	targets := []*target{base, edge, floor}
	for _, t := range targets {
		t.runs = map[string]map[string]any{}
		for _, r := range runs {
			if t.only != nil && !t.only[r.name] {
				continue
			}
			if ctx.Err() != nil {
				return fmt.Errorf("bench: %w", ctx.Err())
			}
			logf("%s: %s %s", t.name, r.name, strings.Join(r.args[1:], " "))
			sum, err := runOne(ctx, tmp, t, bins["./loadtest"], r.name, r.args)
			if err != nil {
				t.fails = append(t.fails, fmt.Sprintf("%s: %v", r.name, err))
				logf("%s %s FAILED: %v", t.name, r.name, err)
			}
			if sum != nil {
				t.runs[r.name] = sum
			}
		}
	}
	printTable(os.Stdout, cfg, base, edge, floor)
	if cfg.results != "" {
		if err := saveResults(filepath.Join(root, cfg.results), cfg, targets); err != nil {
			logf("WARNING: %v", err)
		}
	}
	var fails []string
	for _, t := range targets {
		for _, f := range t.fails {
			fails = append(fails, t.name+" "+f)
		}
	}
	if len(fails) > 0 {
		return fmt.Errorf("%d runs failed: %s", len(fails), strings.Join(fails, "; "))
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run bench inside the sseedge module")
	}
	return filepath.Dir(gomod), nil
}

func build(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 600 {
			msg = msg[:600] + "..."
		}
		return fmt.Errorf("go build %s: %w: %s", pkg, err, msg)
	}
	return nil
}

// owned makes a child die with us: its own process group (so it and its children can be killed as one)
// and SIGKILL if this process dies first.
func owned(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
}

// runOne starts a fresh server process, runs one load against it and stops it.
func runOne(ctx context.Context, tmp string, t *target, loadtest, name string, args []string) (map[string]any, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(tmp, t.name+"-"+name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer logFile.Close()
	srv := exec.CommandContext(ctx, t.bin, t.args...)
	srv.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1", "HEARTBEAT_INTERVAL=15s")
	srv.Stdout, srv.Stderr = logFile, logFile
	owned(srv)
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", t.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer stopServer(srv, exited)
	if err := waitReady(ctx, url, exited); err != nil {
		return nil, fmt.Errorf("%w (log %s: %s)", err, logPath, tail(logPath))
	}

	full := append(append([]string{}, args...), "-url", url, "-json", "-timeout", "90s")
	if name == "idle" {
		full = append(full, "-pid", strconv.Itoa(srv.Process.Pid))
	}
	lt := exec.CommandContext(ctx, loadtest, full...)
	var stdout, stderr bytes.Buffer
	lt.Stdout, lt.Stderr = &stdout, &stderr
	owned(lt)
	runErr := lt.Run()
	var sum map[string]any
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); jerr != nil {
		sum = nil
	}
	if runErr != nil {
		return sum, fmt.Errorf("loadtest %s: %w: %s", name, runErr, strings.TrimSpace(stderr.String()))
	}
	if sum == nil {
		return nil, fmt.Errorf("loadtest %s printed no JSON summary: %q", name, stdout.String())
	}
	select {
	case err := <-exited:
		return sum, fmt.Errorf("server exited during the run: %v (log %s: %s)", err, logPath, tail(logPath))
	default:
	}
	return sum, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the server until it answers HTTP (any status) or gives up.
func waitReady(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("server exited at start: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for server: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/debug/vars", nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
	}
	return errors.New("server did not answer within 20s")
}

// stopServer asks the server's process group to stop, then kills it.
func stopServer(srv *exec.Cmd, exited <-chan error) {
	pgid := -srv.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-exited
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL) // anything the server itself started
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return strings.TrimSpace(string(b))
}

// row is one figure of the table: where to find it in a run's summary, its unit scaling, and whether
// lower is better.
type row struct {
	label, run, key string
	scale           float64
	lowerBetter     bool
	decimals        int
	noRatio         bool // a count or a figure of the load client, not a comparison of the servers
}

func printTable(w io.Writer, cfg settings, base, edge, floor *target) {
	paced := fmt.Sprintf("at %g ev/s", cfg.rate)
	rows := []row{
		{fmt.Sprintf("idle streams established (of %d)", cfg.idleN), "idle", "established", 1, false, 0, true},
		{"server RSS per idle stream (KiB)", "idle", "rss_per_conn", 1.0 / 1024, true, 2, false},
		{"server Go heap+stack per idle stream (KiB)", "idle", "go_per_conn", 1.0 / 1024, true, 2, false},
		{"connect rate (streams/s)", "idle", "connect_rate", 1, false, 0, false},
		{fmt.Sprintf("deliveries/s, %d subs x %d events, flat out", cfg.subs, cfg.events), "fanout", "deliveries_per_sec", 1, false, 0, false},
		{"latency p50 flat out (ms)", "fanout", "latency_p50_ms", 1, true, 2, false},
		{"latency p99 flat out (ms)", "fanout", "latency_p99_ms", 1, true, 2, false},
		{"missing deliveries flat out", "fanout", "missing", 1, true, 0, true},
		{"load client CPU while delivering flat out (s)", "fanout", "client_cpu_seconds", 1, true, 2, true},
	}
	if cfg.rate > 0 {
		rows = append(rows,
			row{"latency p50 " + paced + " (ms)", "paced", "latency_p50_ms", 1, true, 2, false},
			row{"latency p99 " + paced + " (ms)", "paced", "latency_p99_ms", 1, true, 2, false},
			row{"missing deliveries " + paced, "paced", "missing", 1, true, 0, true},
		)
	}
	fmt.Fprintln(w)
	if edge.note != "" {
		fmt.Fprintf(w, "NOTE: %s\n\n", edge.note)
	}
	fmt.Fprintf(w, "| %-52s | %12s | %12s | %8s | %12s |\n", "figure", "baseline", "sseedge", "ratio", "floor")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 54), strings.Repeat("-", 14), strings.Repeat("-", 14), strings.Repeat("-", 10), strings.Repeat("-", 14))
	for _, r := range rows {
		b, bok := value(base, r)
		e, eok := value(edge, r)
		ratio := "-"
		if bok && eok {
			num, den := e, b
			if r.lowerBetter {
				num, den = b, e
			}
			if den > 0 && num > 0 && !r.noRatio {
				ratio = fmt.Sprintf("%.2fx", num/den)
			}
		}
		floorCell := "-"
		if floor.only[r.run] {
			f, fok := value(floor, r)
			floorCell = cell(f, fok, r.decimals)
		}
		fmt.Fprintf(w, "| %-52s | %12s | %12s | %8s | %12s |\n", r.label, cell(b, bok, r.decimals), cell(e, eok, r.decimals), ratio, floorCell)
	}
	fmt.Fprintln(w, "\nratio = how many times better sseedge is (baseline/sseedge for costs and latency, sseedge/baseline for rates)")
	fmt.Fprintln(w, "floor = the paced load against a server that only writes each frame to every socket, one goroutine per core:")
	fmt.Fprintln(w, "        the least latency any server can have on this machine with this load client")
}

func value(t *target, r row) (float64, bool) {
	sum, ok := t.runs[r.run]
	if !ok {
		return 0, false
	}
	v, ok := sum[r.key].(float64)
	if !ok {
		v, ok = 0, r.key == "missing" // omitted zero values
	}
	return v * r.scale, ok
}

func cell(v float64, ok bool, decimals int) string {
	if !ok || math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func saveResults(dir string, cfg settings, targets []*target) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	doc := map[string]any{
		"time":     time.Now().UTC().Format(time.RFC3339),
		"settings": map[string]any{"idle_n": cfg.idleN, "subs": cfg.subs, "events": cfg.events, "rate": cfg.rate},
	}
	for _, t := range targets {
		doc[t.name] = map[string]any{"runs": t.runs, "failures": t.fails, "note": t.note}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	path := filepath.Join(dir, "bench-"+time.Now().UTC().Format("20060102-150405")+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	logf("raw results in %s", path)
	return nil
}
