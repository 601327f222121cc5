package charttest

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryDrains runs the edge binary with the environment the chart's Deployment gives it (the
// rendered ConfigMap and Secret resolved, the pod name for NODE_ID) and checks what the chart assumes
// of it: the readiness path answers 200, the liveness and startup port accepts, /metrics takes the
// METRICS_TOKEN the ServiceMonitor sends, and on SIGTERM every
// stream is told to come back within the reconnect window the chart and the docs use, and the process
// is gone within DRAIN_TIMEOUT, inside the grace period the kubelet allows after preStop.
func TestBinaryDrains(t *testing.T) {
	r := render(t, filepath.Join(chartDir, "ci", "memory-values.yaml"))
	if p, _ := check(r); len(p) > 0 {
		t.Fatalf("the rendering has problems: %v", p)
	}
	d := r.Deployments[0]
	edge := container(d, "edge")
	env := map[string]string{}
	for _, from := range edge.EnvFrom {
		for k, v := range r.ConfigMaps[from.ConfigMapRef.Name].Data {
			env[k] = v
		}
	}
	for _, e := range edge.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = string(r.Secrets[e.ValueFrom.SecretKeyRef.Name].Data[e.ValueFrom.SecretKeyRef.Key])
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = "sseedge-ci-pod"
		default:
			t.Fatalf("cannot resolve %s", e.Name)
		}
	}
	// The pod's port is free in its own network namespace; here take any free one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	env["PORT"] = strconv.Itoa(port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cmd := exec.Command(edgeBin)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("edge log:\n%s", logs.String())
		}
	})

	probePath := edge.ReadinessProbe.HTTPGet.Path
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + probePath)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			t.Fatalf("readiness GET %s: %s", probePath, resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness GET %s never answered: %v", probePath, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err != nil {
		t.Fatalf("liveness and startup (tcpSocket): %v", err)
	} else {
		c.Close()
	}

	// The ServiceMonitor sends METRICS_TOKEN: the secured edge must take it, and refuse no token.
	for _, c := range []struct {
		token string
		want  int
	}{{env["METRICS_TOKEN"], http.StatusOK}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /metrics with token %t: %s, want %d", c.token != "", resp.Status, c.want)
		}
	}

	// Streams through the secret the chart generated.
	const streams = 40
	type result struct {
		retry []int
		err   error
	}
	results := make(chan result, streams)
	connected := make(chan struct{}, streams)
	for i := range streams {
		id := fmt.Sprintf("c%d", i)
		req, _ := http.NewRequest("GET", base+"/sse/"+id, nil)
		req.Header.Set("X-Authorization", "Bearer "+streamToken(env["TOKEN_SECRET"], id))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("stream %s: %s %s", id, resp.Status, b)
		}
		go func() {
			defer resp.Body.Close()
			var res result
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				if line == "event: connected" {
					connected <- struct{}{}
				}
				if v, ok := strings.CutPrefix(line, "retry: "); ok {
					n, err := strconv.Atoi(v)
					if err != nil {
						res.err = err
					}
					res.retry = append(res.retry, n)
				}
			}
			results <- res
		}()
	}
	for range streams {
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("streams did not all connect")
		}
	}

	drain, err := time.ParseDuration(env["DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatal(err)
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	sleep := time.Duration(edge.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	// The kubelet sends SIGTERM once preStop has run; from then the grace period has this much left.
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var lo, hi int
	for range streams {
		select {
		case res := <-results:
			if res.err != nil {
				t.Fatal(res.err)
			}
			// The head's retry: comes first, the shutdown's last.
			if len(res.retry) < 2 {
				t.Fatalf("a stream ended with retry hints %v: no shutdown hint", res.retry)
			}
			ms := res.retry[len(res.retry)-1]
			if lo == 0 || ms < lo {
				lo = ms
			}
			hi = max(hi, ms)
			if time.Duration(ms)*time.Millisecond < minReconnectDelay || time.Duration(ms)*time.Millisecond > maxReconnectDelay {
				t.Errorf("shutdown retry: %d ms, outside the %s to %s the chart and docs assume", ms, minReconnectDelay, maxReconnectDelay)
			}
		case <-time.After(drain + time.Second):
			t.Fatalf("streams still open %s after SIGTERM (DRAIN_TIMEOUT %s)", time.Since(start), drain)
		}
	}
	select {
	case <-exited:
	case <-time.After(drain + time.Second):
		t.Fatalf("the edge still runs %s after SIGTERM (DRAIN_TIMEOUT %s)", time.Since(start), drain)
	}
	took := time.Since(start)
	if took >= grace-sleep {
		t.Errorf("the drain took %s, the grace period leaves %s after preStop", took, grace-sleep)
	}
	t.Logf("%d streams drained in %s (DRAIN_TIMEOUT %s, grace %s after a %s preStop); shutdown retry: %d to %d ms",
		streams, took.Round(time.Millisecond), drain, grace, sleep, lo, hi)
}

// streamToken is an HS256 stream token (sub the client ID, every topic), as auth.Sign makes one.
func streamToken(secret, clientID string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": clientID, "topics": []string{"/"}, "exp": time.Now().Add(time.Hour).Unix()})
	body := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return body + "." + enc.EncodeToString(mac.Sum(nil))
}
