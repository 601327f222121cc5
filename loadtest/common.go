package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sseedge/sseedge/loadtest/internal/sysres"
)

// callFlags are the flags every mode shares: the bearer token of its API calls, its time bound and
// its output.
type callFlags struct {
	token   string
	timeout time.Duration
	json    bool
}

func (c *callFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.token, "token", os.Getenv("ADMIN_TOKEN"), "bearer token for publish and invoke calls (default $ADMIN_TOKEN)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "give up on the whole run after this long")
	fs.BoolVar(&c.json, "json", false, "print only the final single-line JSON summary")
}

// clientFlags are the flags every stream-holding mode shares.
type clientFlags struct {
	url     string
	client  string
	pollers int
	conc    int
	srcIPs  int
	delay   time.Duration
	callFlags
}

func (c *clientFlags) register(fs *flag.FlagSet, readDelay time.Duration) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of the server under test")
	fs.StringVar(&c.client, "client", "epoll", "stream client: epoll (raw sockets, few goroutines) or goroutine (one per stream)")
	fs.IntVar(&c.pollers, "pollers", min(2, runtime.GOMAXPROCS(0)), "epoll client: poller goroutines")
	fs.IntVar(&c.conc, "conc", 512, "most streams between connect and response head at once (keeps the accept queue from overflowing)")
	fs.IntVar(&c.srcIPs, "src-ips", 64, "loopback targets: spread streams over this many 127.0.y.z source addresses (0: let the kernel pick)")
	fs.DurationVar(&c.delay, "read-delay", readDelay, "epoll client: pause between polls so reads batch frames (less client CPU, adds up to this much latency)")
	c.callFlags.register(fs)
}

// output prints human-readable lines unless the run wants JSON only; the summary always goes last.
type output struct {
	w        io.Writer
	jsonOnly bool
}

func (o output) printf(format string, args ...any) {
	if !o.jsonOnly {
		fmt.Fprintf(o.w, format+"\n", args...)
	}
}

func (o output) summary(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	_, err = fmt.Fprintf(o.w, "%s\n", b)
	if err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// goMem is the part of a Go server's expvar memstats the reports use.
type goMem struct {
	HeapInuse  int64 `json:"HeapInuse"`
	HeapAlloc  int64 `json:"HeapAlloc"`
	StackInuse int64 `json:"StackInuse"`
	Sys        int64 `json:"Sys"`
}

// fetchVars reads the memstats of GET <base>/debug/vars (the standard expvar handler).
func fetchVars(ctx context.Context, base string) (goMem, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/debug/vars", nil)
	if err != nil {
		return goMem{}, fmt.Errorf("debug/vars request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return goMem{}, fmt.Errorf("get debug/vars: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return goMem{}, fmt.Errorf("get debug/vars: status %d", resp.StatusCode)
	}
	var v struct {
		Memstats *goMem `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return goMem{}, fmt.Errorf("decode debug/vars: %w", err)
	}
	if v.Memstats == nil {
		return goMem{}, fmt.Errorf("debug/vars has no memstats")
	}
	return *v.Memstats, nil
}

// clientMem is this process's resident and Go-managed memory.
func clientMem() (rss, goInuse int64) {
	rss, _ = sysres.RSS(0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rss, int64(ms.HeapInuse + ms.StackInuse)
}

func cpuNow() time.Duration {
	u, err := sysres.Self()
	if err != nil {
		return 0
	}
	return u.CPU()
}

// perConn divides a memory delta over n connections, in bytes.
func perConn(before, after int64, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(after-before) / float64(n)
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// sleepCtx sleeps d unless ctx ends first; it reports whether the whole d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkFiles raises this process's file limit and refuses a run that cannot fit in it.
func checkFiles(n int) (uint64, error) {
	soft, _, err := sysres.RaiseNoFile()
	if err != nil {
		return soft, err
	}
	if uint64(n)+64 > soft {
		return soft, fmt.Errorf("%d streams need %d open files, the limit is %d", n, n+64, soft)
	}
	return soft, nil
}
