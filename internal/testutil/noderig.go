package testutil

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NodeRig prepares a Node.js test rig: it copies files from src (a testdata directory with a
// package.json and its lockfile) to a directory of the user's cache named by their content and runs npm
// install there, so node_modules never lands in the work tree and later runs reuse it. It returns node's
// path and that directory. It skips the test when node or npm is missing, or when npm cannot install and
// installed (a path under node_modules) is not there yet (offline).
func NodeRig(t testing.TB, name, src string, files []string, installed string) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node is not installed: the %s rig needs Node 18+ and npm", name)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("npm is not installed: the %s rig needs Node 18+ and npm", name)
	}
	dir = rigDir(t, name, src, files)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "node_modules", installed)); serr != nil {
			t.Skipf("npm install failed (offline?), skipping the %s rig test: %v\n%s", name, err, out)
		}
		t.Logf("npm install failed, using the node_modules already there: %v\n%s", err, out)
	}
	return node, dir
}

// rigDir copies files from src to <user cache>/sseedge/<name>-<hash of their contents>.
func rigDir(t testing.TB, name, src string, files []string) string {
	t.Helper()
	sum := sha256.New()
	contents := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		contents[i] = b
		fmt.Fprintf(sum, "%s %d\n", f, len(b))
		sum.Write(b)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = t.TempDir()
	}
	dir := filepath.Join(base, "sseedge", fmt.Sprintf("%s-%x", name, sum.Sum(nil)[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), contents[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// StartNodeServer runs script (a server of a rig, in dir) with env added and returns its base URL: the
// script must print one JSON line {"port": N} once it listens. The process is stopped (SIGTERM) and
// waited for when the test ends; its stderr is logged if it fails.
func StartNodeServer(t testing.TB, node, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Logf("%s: %v\n%s", script, err, stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s did not start: %v\n%s", script, err, stderr.String())
	}
	var ready struct{ Port int }
	if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Port == 0 {
		t.Fatalf("%s said %q: %v", script, line, err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ready.Port)
}

// RunNodeScript runs script (in a rig's dir) with args, bounded to 30 s, and returns the JSON object it
// printed; a failure, or output that is not one, fails the test with the script's stderr.
func RunNodeScript(t testing.TB, node, dir, script string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s said %q: %v", script, out, err)
	}
	return res
}
