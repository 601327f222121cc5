package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sseedge/sseedge/internal/redistest"
)

// switchProxy forwards each connection to the current backend; connections to a backend that dies
// end, as they would behind a load balancer.
type switchProxy struct {
	ln      net.Listener
	backend atomic.Pointer[string]
	wg      sync.WaitGroup
}

func newSwitchProxy(t *testing.T, backend string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln}
	p.backend.Store(&backend)
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *switchProxy) pipe(c net.Conn) {
	defer c.Close()
	b, err := net.Dial("tcp", *p.backend.Load())
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done // either side gone: end both
	c.Close()
	b.Close()
	<-done
}

// TestBrowserMultiTopicFailover: a headless Chromium EventSource on three topics, through a proxy,
// loses its node (SIGKILL); while it reconnects, on its own, to the other node through the same proxy,
// five events go to each topic. It misses none and gets none twice: its Last-Event-ID, the stream's
// cursor, resumes all three topics from Redis.
func TestBrowserMultiTopicFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis, edge processes and Chromium")
	}
	const exe = "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		t.Skip("no Chromium at " + exe)
	}
	r := redistest.StartSingle(t)
	env := "REDIS_ADDR=" + r.Addr()
	a, b := startNode(t, "node-a", env), startNode(t, "node-b", env)
	proxy := newSwitchProxy(t, strings.TrimPrefix(a.url, "http://"))
	proxyURL := "http://" + proxy.ln.Addr().String()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()))
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer func() { _ = chromedp.Cancel(ctx); cancelCtx(); cancelAlloc() }()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, on a context without deadline
		t.Fatalf("starting chromium: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(proxyURL+"/admin/health")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	eval := func(js string) string {
		t.Helper()
		out, err := chromedp.Run(tctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("eval %s: %v", js, err)
		}
		return out
	}
	waitFor := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for eval(js) != "true" {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; got %s", what, eval(`JSON.stringify(window.got)`))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eval(`window.got = []; window.opens = 0;
		window.es = new EventSource('/subscribe?topic=/a&topic=/b&topic=/c/d');
		es.onopen = () => { window.opens++ };
		es.onmessage = e => got.push(e.data);
		es.addEventListener('reset', e => got.push('reset ' + e.data));
		''`)
	waitFor("the stream to open", `String(window.opens === 1)`)
	publishTo(t, a, "/publish/b", "first")
	waitFor("the first event", `String(got.length === 1)`)

	next := strings.TrimPrefix(b.url, "http://")
	proxy.backend.Store(&next)
	a.kill()
	var want []string
	for i := range 5 {
		for _, topic := range []string{"/a", "/b", "/c/d"} {
			d := fmt.Sprintf("%s-%d", topic, i)
			publishTo(t, b, "/publish"+topic, d)
			want = append(want, d)
		}
	}
	waitFor("the reconnect", `String(window.opens === 2)`)
	publishTo(t, b, "/publish/a", "last")
	waitFor("the last event", `String(got[got.length-1] === 'last')`)

	got := strings.Split(eval(`got.join('\n')`), "\n")
	if got[0] != "first" || len(got) != 1+len(want)+1 {
		t.Fatalf("the browser got %q; want first, the %d missed events once each, last", got, len(want))
	}
	perTopic := func(events []string) map[string]string {
		m := map[string][]string{}
		for _, e := range events {
			k := e[:strings.LastIndexByte(e, '-')]
			m[k] = append(m[k], e)
		}
		out := map[string]string{}
		for k, v := range m {
			out[k] = strings.Join(v, ",")
		}
		return out
	}
	g, w := perTopic(got[1:len(got)-1]), perTopic(want)
	for k := range w {
		if g[k] != w[k] {
			t.Fatalf("%s: the browser got %s; want %s (all: %q)", k, g[k], w[k], got)
		}
	}
}
