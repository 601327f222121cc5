package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's curl commands, as written, against the built binary and checks
// that they give what the README says.
func TestReadmeQuickStart(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	bin := edgeBinary(t)
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, bin)
	node.Env = append(os.Environ(), "PORT="+port, "HEARTBEAT_INTERVAL=1h", "NODE_ID=readme-node")
	logs, _ := node.StderrPipe()
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	logLines := bufio.NewScanner(logs)
	waitLine(t, logLines, "sseedge listening")

	// run executes a README command (which must appear in the README verbatim) on our port.
	run := func(cmd string) *exec.Cmd {
		t.Helper()
		if !strings.Contains(string(readme), cmd) {
			t.Fatalf("the README no longer shows %q", cmd)
		}
		c := exec.CommandContext(ctx, "bash", "-c", strings.ReplaceAll(cmd, "localhost:8080", "localhost:"+port))
		return c
	}
	output := func(cmd string) string {
		t.Helper()
		out, err := run(cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return string(out)
	}
	stream := func(cmd string) *bufio.Scanner {
		t.Helper()
		c := run(cmd)
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		s := bufio.NewScanner(out)
		waitLine(t, s, "retry: 3000")
		return s
	}

	pets := stream("curl -sN localhost:8080/subscribe/pets")
	published := output(`curl -s -X POST localhost:8080/publish/pets/dogs -d '{"event":"bark","data":"woof"}'`)
	m := regexp.MustCompile(`^\{"delivered":1,"id":"(\d+-\d+)"\}$`).FindStringSubmatch(strings.TrimSpace(published))
	if m == nil {
		t.Fatalf("publish answered %q", published)
	}
	waitLine(t, pets, "id: "+m[1])
	expectLines(t, pets, "event: bark", "data: woof")

	alice := stream(`curl -sN 'localhost:8080/sse/alice?plan=pro' -H 'X-User-ID: u-42'`)
	expectLines(t, alice, "", "event: connected")
	if line := nextLine(t, alice); !strings.Contains(line, `"client_id":"alice","node_id":"readme-node"`) {
		t.Fatalf("connected event %q", line)
	}
	output(`curl -s -X POST localhost:8080/publish/pets/cats -d '{"event":"meow","data":{"name":"Tom","age":3}}'`)
	waitLine(t, pets, "event: meow")
	expectLines(t, pets, `data: {"name":"Tom","age":3}`)
	output(`curl -s -X POST localhost:8080/clients/alice/events -d '{"event":"note","data":"hello alice"}'`)
	waitLine(t, alice, "event: note")
	expectLines(t, alice, "data: hello alice")

	resumed := stream(`curl -sN localhost:8080/subscribe/pets -H 'Last-Event-ID: 1795395407980-1'`)
	expectLines(t, resumed, "", "event: reset") // the README's ID is not one this node issued

	if h := output("curl -s localhost:8080/admin/health"); !strings.Contains(h, `"status":"ok"`) || !strings.Contains(h, `"topic":2`) {
		t.Fatalf("health %s", h)
	}
	if c := output("curl -s 'localhost:8080/admin/connections?kind=topic&limit=10'"); !strings.Contains(c, `"topic":"/pets"`) {
		t.Fatalf("connections %s", c)
	}

	// The functions walkthrough: the sample function, registered, invoked sync and async.
	fnPort := freePort(t)
	fnBin := filepath.Join(t.TempDir(), "functions")
	if out, err := exec.Command("go", "build", "-o", fnBin, "../../examples/functions").CombinedOutput(); err != nil {
		t.Fatalf("build the sample function: %v\n%s", err, out)
	}
	if !strings.Contains(string(readme), "go run ./examples/functions -addr 127.0.0.1:9000") {
		t.Fatal("the README no longer starts the sample function as the test does")
	}
	fn := exec.CommandContext(ctx, fnBin, "-addr", "127.0.0.1:"+fnPort)
	if err := fn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Process.Kill(); fn.Wait() })
	withFn := func(cmd string) string { return strings.ReplaceAll(cmd, "127.0.0.1:9000", "127.0.0.1:"+fnPort) }
	register := `curl -s -X POST localhost:8080/admin/functions -d '{"name":"upper","endpoint":"http://127.0.0.1:9000/upper","timeout":5}'`
	if !strings.Contains(string(readme), register) {
		t.Fatalf("the README no longer shows %q", register)
	}
	for { // the sample function may still be starting: registration does not wait for it, invoking does
		out, err := exec.CommandContext(ctx, "bash", "-c", strings.ReplaceAll(withFn(register), "localhost:8080", "localhost:"+port)).Output()
		if err != nil || !strings.Contains(string(out), `"name":"upper"`) {
			t.Fatalf("register: %s %v", out, err)
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+fnPort); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond) // the sample function's listener has no event to wait on
	}
	aliceFn := stream("curl -sN localhost:8080/sse/alice")
	expectLines(t, aliceFn, "", "event: connected")
	if out := output(`curl -s -X POST localhost:8080/invoke/upper -d '{"payload":{"text":"hello"}}'`); strings.TrimSpace(out) != `{"text":"HELLO"}` {
		t.Fatalf("sync invoke: %q", out)
	}
	accepted := output(`curl -s -X POST localhost:8080/invoke/upper -d '{"payload":{"text":"hello async"},"client_id":"alice","async":true}'`)
	if !strings.Contains(accepted, `"invocation_id"`) {
		t.Fatalf("async invoke: %q", accepted)
	}
	waitLine(t, aliceFn, "event: function_response")
	if line := nextLine(t, aliceFn); !strings.Contains(line, `"result":{"text":"HELLO ASYNC"}`) || !strings.Contains(line, `"status":"ok"`) {
		t.Fatalf("function_response %q", line)
	}

	// SIGTERM: streams get the shutdown event, the node exits cleanly.
	node.Process.Signal(syscall.SIGTERM)
	waitLine(t, pets, "event: shutdown")
	waitLine(t, logLines, "stopped")
	go io.Copy(io.Discard, logs)
	if err := node.Wait(); err != nil {
		t.Fatalf("node exit: %v", err)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func nextLine(t *testing.T, s *bufio.Scanner) string {
	t.Helper()
	if !s.Scan() {
		t.Fatalf("output ended: %v", s.Err())
	}
	return s.Text()
}

// waitLine reads until a line containing want.
func waitLine(t *testing.T, s *bufio.Scanner, want string) {
	t.Helper()
	for {
		if strings.Contains(nextLine(t, s), want) {
			return
		}
	}
}

// expectLines checks the next lines exactly.
func expectLines(t *testing.T, s *bufio.Scanner, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := nextLine(t, s); got != w {
			t.Fatalf("got line %q; want %q", got, w)
		}
	}
}
