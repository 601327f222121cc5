package charttest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	repoRoot  string // the parent module: the edge's source
	chartDir  string
	helmBin   string
	edgeBin   string
	edgeBytes []byte              // the edge binary's contents, to find the names the OTel SDK reads
	flags     map[string]flagInfo // the edge's settings by environment variable name
	helmHome  string              // HELM_*_HOME: nothing of the user's helm configuration is read
)

// flagInfo is one flag of `edge -h`.
type flagInfo struct {
	Name    string // as a flag: drain-timeout
	Type    string // duration, int, string; empty for a bool
	Default string // what the flag package prints as "(default ...)"; empty when it prints none
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "charttest:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return 0, err
	}
	chartDir = filepath.Join(repoRoot, "deploy", "helm", "sseedge")
	tmp, err := os.MkdirTemp("", "charttest-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	helmHome = tmp

	// helm at the version go.mod pins: `go tool -n` builds it once into the build cache and prints
	// the executable's path (later runs reuse it).
	start := time.Now()
	cmd := exec.Command("go", "tool", "-n", "helm")
	cmd.Dir = filepath.Join(repoRoot, "deploy")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("building helm (go tool -n helm): %w", err)
	}
	helmBin = strings.TrimSpace(string(out))
	fmt.Fprintf(os.Stderr, "charttest: helm ready in %s: %s\n", time.Since(start).Round(time.Millisecond), helmBin)

	start = time.Now()
	edgeBin = filepath.Join(tmp, "edge")
	cmd = exec.Command("go", "build", "-o", edgeBin, "./cmd/edge")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the edge (go build ./cmd/edge): %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "charttest: edge built in %s\n", time.Since(start).Round(time.Millisecond))
	if edgeBytes, err = os.ReadFile(edgeBin); err != nil {
		return 0, err
	}
	usage, err := exec.Command(edgeBin, "-h").CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return 0, fmt.Errorf("edge -h: %w", err)
	}
	if flags, err = parseUsage(usage); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

var (
	flagLine    = regexp.MustCompile(`^  -([a-z0-9][a-z0-9.-]*)(?: (\S+))?$`)
	defaultText = regexp.MustCompile(`\(default (.*)\)$`)
)

// parseUsage reads the flag list the flag package prints for -h: "  -name type" and then the usage,
// indented by four spaces and a tab, ending in "(default value)" when the default is not the zero value.
func parseUsage(out []byte) (map[string]flagInfo, error) {
	got := map[string]flagInfo{}
	var cur *flagInfo
	var usage []string
	flush := func() {
		if cur == nil {
			return
		}
		if m := defaultText.FindStringSubmatch(strings.Join(usage, " ")); m != nil {
			cur.Default = m[1]
			if s, err := strconv.Unquote(cur.Default); err == nil {
				cur.Default = s
			}
		}
		got[envName(cur.Name)] = *cur
		cur, usage = nil, nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = &flagInfo{Name: m[1], Type: m[2]}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    \t") {
			usage = append(usage, strings.TrimPrefix(line, "    \t"))
		}
	}
	flush()
	for _, need := range []string{"PORT", "HOST", "DRAIN_TIMEOUT", "HEARTBEAT_INTERVAL", "REDIS_ADDR"} {
		if _, ok := got[need]; !ok {
			return nil, fmt.Errorf("edge -h lists no flag for %s; the output was:\n%s", need, out)
		}
	}
	return got, nil
}

// envName is the environment variable peterbourgon/ff reads for a flag (ff.WithEnvVars, no prefix).
func envName(flag string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(flag))
}

// helm runs the pinned helm with a configuration of its own.
func helm(args ...string) (string, error) {
	cmd := exec.Command(helmBin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return stdout.String(), fmt.Errorf("helm %s wrote to stderr:\n%s", strings.Join(args, " "), s)
	}
	return stdout.String(), nil
}

// valueCases are the default values and each values file of the chart's ci/ directory.
func valueCases(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("expected a values file per mode under %s/ci, found %d", chartDir, len(files))
	}
	return append([]string{""}, files...)
}

func caseName(file string) string {
	if file == "" {
		return "defaults"
	}
	return strings.TrimSuffix(filepath.Base(file), "-values.yaml")
}

func valuesArgs(file string, extra ...string) []string {
	if file != "" {
		extra = append([]string{"-f", file}, extra...)
	}
	return extra
}
