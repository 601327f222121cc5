package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseedge/sseedge/internal/redistest"
)

// failoverSubscribers is the figure: streams held on two nodes through a failover.
const failoverSubscribers = 1000

// Pacing of the failover runs: a publish every publishEvery, alternating between the nodes, from
// before the kill until recoveredRun publishes in a row have been accepted after the last failure.
const (
	publishEvery  = 50 * time.Millisecond
	warmPublishes = 20
	recoveredRun  = 40
	failoverLimit = 60 * time.Second
)

// attempt is one publish of a failover run.
type attempt struct {
	data    string
	at      time.Time
	took    time.Duration
	code    int
	errCode string
}

// tryPublish publishes data; client bounds it, so a hung node shows as a failure instead of stopping
// the run.
func tryPublish(client *http.Client, url, data string) attempt {
	a := attempt{data: data, at: time.Now()}
	resp, err := client.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"data":%q}`, data)))
	a.took = time.Since(a.at)
	if err != nil {
		a.errCode = err.Error()
		return a
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a.code = resp.StatusCode
	if a.code != http.StatusOK {
		a.errCode = string(body)
	}
	return a
}

// failoverFigures is what a failover cost, for the closing note and docs/redis.md.
type failoverFigures struct {
	accepted, failed, unknownDelivered int
	outage                             time.Duration // from the first failed publish to the next accepted one after the last failure
	slowestFailure                     time.Duration
	recovered, unrecovered, probeFails float64 // summed over the nodes
}

// runFailover holds failoverSubscribers streams on the nodes (half each), publishes through them
// in turn while kill ends a Redis master, and checks that every subscriber gets every accepted event
// exactly once, in order, and that publishes failed only with a fast 503 state_unavailable.
func runFailover(t *testing.T, nodes []*edgeNode, kill func()) failoverFigures {
	t.Helper()
	const topic = "/failover"
	client := &http.Client{Timeout: 10 * time.Second}
	for _, n := range nodes {
		if code, h := request(t, "GET", n.url+"/admin/health", ""); code != http.StatusOK {
			t.Fatalf("%s unhealthy before the failover: %d %v", n.name, code, h)
		}
	}
	subs := make([]*subscriber, failoverSubscribers)
	for i := range subs {
		subs[i] = subscribe(t, nodes[i%len(nodes)].url+"/subscribe"+topic, "")
	}

	var mu sync.Mutex
	var attempts []attempt
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(publishEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			a := tryPublish(client, nodes[i%len(nodes)].url+"/publish"+topic, fmt.Sprintf("e-%d", i))
			mu.Lock()
			attempts = append(attempts, a)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// waitAttempts waits until cond holds for what was published so far.
	waitAttempts := func(what string, cond func([]attempt) bool) {
		t.Helper()
		deadline := time.Now().Add(failoverLimit)
		for {
			mu.Lock()
			ok := cond(attempts)
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				close(stop)
				<-published
				t.Fatalf("%s: not within %v; attempts: %+v", what, failoverLimit, attempts[max(0, len(attempts)-20):])
			}
			time.Sleep(publishEvery)
		}
	}
	waitAttempts("warm-up publishes accepted", func(as []attempt) bool { return len(as) >= warmPublishes })
	kill()
	killed := time.Now()
	waitAttempts("publishing recovered", func(as []attempt) bool {
		run, sawFailure := 0, false
		for _, a := range as {
			switch {
			case a.code != http.StatusOK:
				run, sawFailure = 0, true
			case a.at.After(killed):
				run++
			}
		}
		// A failover that cost no failed publish is possible (the kill fell between two), so the
		// run after the kill counts too; long enough that a failover still to come would show.
		return (sawFailure && run >= recoveredRun) || run >= 4*recoveredRun
	})
	close(stop)
	<-published

	// The last event is the end marker; the gap before it (if a node still had one) is filled first.
	final := attempt{}
	for deadline := time.Now().Add(failoverLimit); final.code != http.StatusOK; {
		if final = tryPublish(client, nodes[0].url+"/publish"+topic, "final"); final.code != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("the end marker was not accepted: %+v", final)
			}
			time.Sleep(publishEvery)
		}
	}

	var fig failoverFigures
	var accepted []string
	failed := map[string]bool{}
	var firstFailure, lastFailure time.Time
	for _, a := range attempts {
		if a.code == http.StatusOK {
			accepted = append(accepted, a.data)
			if !lastFailure.IsZero() && fig.outage == 0 && a.at.After(lastFailure) {
				fig.outage = a.at.Sub(firstFailure) // provisional: a later failure moves it
			}
			continue
		}
		fig.failed++
		failed[a.data] = true
		fig.slowestFailure = max(fig.slowestFailure, a.took)
		if a.code != http.StatusServiceUnavailable || !strings.Contains(a.errCode, "state_unavailable") {
			t.Errorf("publish %s failed with %d %s; want 503 state_unavailable", a.data, a.code, a.errCode)
		}
		if firstFailure.IsZero() {
			firstFailure = a.at
		}
		lastFailure, fig.outage = a.at, 0
	}
	if !lastFailure.IsZero() {
		for _, a := range attempts {
			if a.code == http.StatusOK && a.at.After(lastFailure) {
				fig.outage = a.at.Sub(firstFailure)
				break
			}
		}
	}
	fig.accepted = len(accepted)
	accepted = append(accepted, "final")
	if fig.slowestFailure > 3*time.Second {
		t.Errorf("the slowest failed publish took %v; want a fast 503", fig.slowestFailure)
	}

	// Every subscriber: every accepted event once, in order. A publish answered 503 may still have
	// been applied (Redis ran it, the answer was lost with the master): such an event may arrive,
	// once, and is counted, but nothing else may.
	var wg sync.WaitGroup
	errs := make(chan string, len(subs))
	var extra sync.Map
	for i, s := range subs {
		wg.Go(func() {
			var got []string
			seen := map[string]bool{}
			timeout := time.After(failoverLimit)
			for {
				select {
				case ev, ok := <-s.Events():
					if !ok {
						errs <- fmt.Sprintf("subscriber %d: the stream ended after %d events", i, len(got))
						return
					}
					if seen[ev.Data] {
						errs <- fmt.Sprintf("subscriber %d: %s delivered twice", i, ev.Data)
						return
					}
					seen[ev.Data] = true
					if failed[ev.Data] {
						extra.Store(ev.Data, true)
						continue
					}
					got = append(got, ev.Data)
					if ev.Data != "final" {
						continue
					}
					if !slices.Equal(got, accepted) {
						errs <- fmt.Sprintf("subscriber %d got %d events, want the %d accepted in order; first difference at %d", i, len(got), len(accepted), firstDiff(got, accepted))
					}
					return
				case <-timeout:
					errs <- fmt.Sprintf("subscriber %d: no end marker after %d events", i, len(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 5 {
			t.Error(e)
		}
	}
	if n > 5 {
		t.Errorf("... and %d more subscribers", n-5)
	}
	extra.Range(func(any, any) bool { fig.unknownDelivered++; return true })
	for _, n := range nodes { // the probe sees the bus whole again on the new master
		deadline := time.Now().Add(failoverLimit)
		for code, h := request(t, "GET", n.url+"/admin/health", ""); code != http.StatusOK; code, h = request(t, "GET", n.url+"/admin/health", "") {
			if time.Now().After(deadline) {
				t.Fatalf("%s still unhealthy after the failover: %d %v", n.name, code, h)
			}
			time.Sleep(publishEvery)
		}
	}
	for _, node := range nodes {
		fams := scrape(t, node.url)
		fig.recovered += value(fams, "sseedge_bus_recovered_events_total")
		fig.unrecovered += value(fams, "sseedge_bus_unrecovered_gaps_total")
		fig.probeFails += value(fams, "sseedge_bus_probe_failures_total")
	}
	t.Logf("failover: %d subscribers on %d nodes; %d publishes accepted, %d answered 503 over %.1f s (first failure to the next accepted publish; slowest 503 took %v); %d events answered 503 were delivered anyway; %g events recovered from history by the nodes, %g gaps left; %g failed probes",
		len(subs), len(nodes), fig.accepted, fig.failed, fig.outage.Seconds(), fig.slowestFailure.Round(time.Millisecond), fig.unknownDelivered, fig.recovered, fig.unrecovered, fig.probeFails)
	return fig
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSentinelFailover is issue 16's Sentinel acceptance: two nodes follow a master, one replica and
// three sentinels; the master is killed (SIGKILL) and the replica promoted; the nodes publish again
// within the failover time and 1,000 held streams get every accepted event once, in order.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis, sentinels and edge processes")
	}
	set := redistest.StartSentinel(t)
	env := []string{"REDIS_SENTINEL_ADDR=" + strings.Join(set.Addrs(), ","), "REDIS_SENTINEL_MASTER=" + set.Name}
	nodes := []*edgeNode{startNode(t, "sentinel-a", env...), startNode(t, "sentinel-b", env...)}
	fig := runFailover(t, nodes, func() {
		set.Master.Kill()
	})
	set.WaitFailover(t, set.Replica.Addr())
	if fig.failed > 0 && fig.outage > 30*time.Second {
		t.Errorf("publishing was down %v; want it back within the failover time", fig.outage)
	}
}

// TestClusterReplicaFailover is the same on a Redis Cluster of 3 masters with a replica each: the
// master holding the topic's partition is killed (SIGKILL) and its replica takes over.
func TestClusterReplicaFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and edge processes")
	}
	c := redistest.StartClusterWithReplicas(t, 3)
	env := []string{"REDIS_ADDR=" + strings.Join(c.Addrs(), ",")}
	nodes := []*edgeNode{startNode(t, "replicas-a", env...), startNode(t, "replicas-b", env...)}
	fig := runFailover(t, nodes, func() {
		victim := c.MasterHolding(t, "*:h:t:/failover")
		if victim == nil {
			t.Fatal("no master holds the topic's history")
		}
		victim.Kill()
	})
	c.WaitFailover(t, 3)
	if fig.failed == 0 {
		t.Log("no publish failed: the kill fell between two publishes and the failover between two more")
	}
}

// TestWedgedBusHealth wedges one node's path to Redis (a proxy that stops forwarding and closes
// nothing): its health turns 503 within the probe deadline while the other node stays healthy, and
// when the path returns the node is healthy again by itself and its stream gets what was published
// meanwhile.
func TestWedgedBusHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes")
	}
	r := redistest.StartSingle(t)
	proxy := redistest.StartProxy(t, r.Addr())
	const interval, timeout = 200 * time.Millisecond, time.Second
	probes := []string{"REDIS_PROBE_INTERVAL=" + interval.String(), "REDIS_PROBE_TIMEOUT=" + timeout.String()}
	a := startNode(t, "direct", append(probes, "REDIS_ADDR="+r.Addr())...)
	b := startNode(t, "wedged", append(probes, "REDIS_ADDR="+proxy.Addr())...)
	s := subscribe(t, b.url+"/subscribe/wedge", "")
	health := func(n *edgeNode) (int, map[string]any) { return request(t, "GET", n.url+"/admin/health", "") }
	if code, h := health(b); code != http.StatusOK {
		t.Fatalf("health before: %d %v", code, h)
	}
	var want []string
	publish := func(data string) {
		if code, out := request(t, "POST", a.url+"/publish/wedge", fmt.Sprintf(`{"data":%q}`, data)); code != http.StatusOK {
			t.Fatalf("publish %s: %d %v", data, code, out)
		}
		want = append(want, data)
	}
	publish("before")

	proxy.Pause()
	wedged := time.Now()
	for {
		code, h := health(b)
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(fmt.Sprint(h["redis"]), "down") {
				t.Fatalf("503 health without the reason: %v", h)
			}
			break
		}
		if time.Since(wedged) > interval+timeout+2*time.Second {
			t.Fatalf("health still %d %v after %v", code, h, time.Since(wedged))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("wedged bus: health 503 after %v (probe interval %v, timeout %v)", time.Since(wedged).Round(time.Millisecond), interval, timeout)
	if code, h := health(a); code != http.StatusOK {
		t.Fatalf("the other node's health: %d %v", code, h)
	}
	for i := range 10 {
		publish(fmt.Sprintf("w-%d", i))
	}

	proxy.Resume()
	resumed := time.Now()
	for code, _ := health(b); code != http.StatusOK; code, _ = health(b) {
		if time.Since(resumed) > 20*time.Second {
			t.Fatal("health did not recover after the path returned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("health 200 again %v after the path returned", time.Since(resumed).Round(time.Millisecond))
	publish("after")
	for i, w := range want {
		ev, ok := s.next(t)
		if !ok || ev.Data != w {
			t.Fatalf("event %d on the wedged node's stream: %+v; want %s", i, ev, w)
		}
	}
	fams := scrape(t, b.url)
	if v := value(fams, "sseedge_bus_probe_failures_total"); v == 0 {
		t.Error("sseedge_bus_probe_failures_total = 0 after a wedge")
	}
	if v := value(fams, "sseedge_redis_up"); v != 1 {
		t.Errorf("sseedge_redis_up = %v after recovery", v)
	}
}

// TestRedisTLSNode is issue 16's TLS acceptance: nodes on rediss:// with a test CA, a client
// certificate and an ACL user share streams and the registry; a wrong CA or password stops a node at
// start with a log line naming the setting (the node exits non-zero: it never serves alone in
// memory while configured for Redis, which would split the cluster unnoticed).
func TestRedisTLSNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and edge processes")
	}
	srv := redistest.StartTLS(t)
	env := []string{"REDIS_ADDR=" + srv.URL(), "REDIS_TLS_CA_FILE=" + srv.PKI.CAFile,
		"REDIS_TLS_CERT_FILE=" + srv.PKI.ClientCertFile, "REDIS_TLS_KEY_FILE=" + srv.PKI.ClientKeyFile}
	a, b := startNode(t, "tls-a", env...), startNode(t, "tls-b", env...)
	s := subscribe(t, b.url+"/subscribe/secure", "")
	if code, out := request(t, "POST", a.url+"/publish/secure", `{"data":"over tls"}`); code != http.StatusOK {
		t.Fatalf("publish: %d %v", code, out)
	}
	if ev, _ := s.next(t); ev.Data != "over tls" {
		t.Fatalf("B's stream got %+v", ev)
	}
	fn := functionServer(t)
	if code, out := request(t, "POST", a.url+"/admin/functions", fmt.Sprintf(`{"name":"upper","endpoint":"%s/upper"}`, fn.URL)); code != http.StatusCreated {
		t.Fatalf("register on A: %d %v", code, out)
	}
	if code, out := request(t, "GET", b.url+"/admin/functions/upper", ""); code != http.StatusOK {
		t.Fatalf("read on B: %d %v", code, out)
	}
	if code, h := request(t, "GET", b.url+"/admin/health", ""); code != http.StatusOK {
		t.Fatalf("health: %d %v", code, h)
	}
	clients, err := srv.Do("CLIENT", "LIST")
	if err != nil || strings.Contains(clients, "user=default") || !strings.Contains(clients, "user="+srv.User) {
		t.Fatalf("CLIENT LIST: %v\n%s", err, clients)
	}

	other := redistest.NewPKI(t)
	for _, c := range []struct {
		name string
		env  []string
		hint string
	}{
		{"wrong CA", []string{"REDIS_ADDR=" + srv.URL(), "REDIS_TLS_CA_FILE=" + other.CAFile,
			"REDIS_TLS_CERT_FILE=" + srv.PKI.ClientCertFile, "REDIS_TLS_KEY_FILE=" + srv.PKI.ClientKeyFile}, "REDIS_TLS_CA_FILE"},
		{"wrong password", []string{"REDIS_ADDR=" + strings.Replace(srv.URL(), srv.Password, "wrong", 1), "REDIS_TLS_CA_FILE=" + srv.PKI.CAFile,
			"REDIS_TLS_CERT_FILE=" + srv.PKI.ClientCertFile, "REDIS_TLS_KEY_FILE=" + srv.PKI.ClientKeyFile}, "REDIS_PASSWORD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, logs := runToExit(t, c.env...)
			if code == 0 {
				t.Fatalf("the node exited 0; logs:\n%s", logs)
			}
			if !strings.Contains(logs, "redis: cannot connect at start; exiting") || !strings.Contains(logs, c.hint) {
				t.Fatalf("no clear log line naming %s:\n%s", c.hint, logs)
			}
			if strings.Contains(logs, srv.Password) {
				t.Fatalf("the log shows the password:\n%s", logs)
			}
		})
	}
}

// runToExit runs an edge process that is expected to stop by itself, and returns its exit code and
// its log.
func runToExit(t *testing.T, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, edgeBinary(t))
	cmd.Env = append(os.Environ(), append([]string{"PORT=" + freePort(t), "NODE_ID=exits"}, env...)...)
	var logs strings.Builder
	cmd.Stderr = &logs
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the node did not exit: %s", logs.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, logs.String()
}

// TestRedisUpFollowsTheClient is issue 18's item 9 (Redis part): sseedge_redis_up moves without
// anyone calling /admin/health, and health is red while Redis answers PING but refuses writes.
func TestRedisUpFollowsTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and an edge process")
	}
	r := redistest.StartSingle(t)
	n := startNode(t, "writes", "REDIS_ADDR="+r.Addr(), "REDIS_PROBE_INTERVAL=200ms", "REDIS_PROBE_TIMEOUT=1s")
	up := func() float64 { return value(scrape(t, n.url), "sseedge_redis_up") }
	waitUp := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for up() != want {
			if time.Now().After(deadline) {
				t.Fatalf("sseedge_redis_up still %v; want %v", up(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUp(1)
	if _, err := redistest.Do(r.Addr(), "CONFIG", "SET", "min-replicas-to-write", "1"); err != nil {
		t.Fatal(err)
	}
	waitUp(0) // no health call so far
	if reply, err := redistest.Do(r.Addr(), "PING"); err != nil || reply != "PONG" {
		t.Fatalf("PING = %q, %v: the point is that Redis still answers", reply, err)
	}
	code, h := request(t, "GET", n.url+"/admin/health", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(h["redis"]), "NOREPLICAS") {
		t.Fatalf("health while Redis refuses writes: %d %v; want 503 naming NOREPLICAS", code, h)
	}
	if code, out := request(t, "POST", n.url+"/publish/w", `{"data":"x"}`); code == http.StatusOK {
		t.Fatalf("publish accepted while Redis refuses writes: %v", out)
	}
	if _, err := redistest.Do(r.Addr(), "CONFIG", "SET", "min-replicas-to-write", "0"); err != nil {
		t.Fatal(err)
	}
	waitUp(1)
	if code, h := request(t, "GET", n.url+"/admin/health", ""); code != http.StatusOK {
		t.Fatalf("health after writes are taken again: %d %v", code, h)
	}
}
