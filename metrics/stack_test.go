package metrics

// The deployment stack (docker-compose.yml, Dockerfile, deploy/nginx.conf and dashboards/) cannot be
// run here, so these tests check it by parsing: every reference between the files resolves (services,
// mounted paths, build targets, hosts and ports), the load balancer keeps SSE unbuffered, and every
// metric a dashboard queries is one this package exports.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository root: go test runs in metrics/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func exists(t *testing.T, rel string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	return err == nil
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string      `yaml:"image"`
	Build       yaml.Node   `yaml:"build"`
	DependsOn   yaml.Node   `yaml:"depends_on"`
	Volumes     []yaml.Node `yaml:"volumes"`
	Ports       []yaml.Node `yaml:"ports"`
	Expose      []yaml.Node `yaml:"expose"`
	Environment yaml.Node   `yaml:"environment"`
	Command     yaml.Node   `yaml:"command"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

// build decodes the short (a context path) and long forms of build.
func (s composeService) build(t *testing.T) (composeBuild, bool) {
	t.Helper()
	switch s.Build.Kind {
	case 0:
		return composeBuild{}, false
	case yaml.ScalarNode:
		return composeBuild{Context: s.Build.Value, Dockerfile: "Dockerfile"}, true
	}
	var b composeBuild
	if err := s.Build.Decode(&b); err != nil {
		t.Fatalf("build: %v", err)
	}
	if b.Context == "" {
		b.Context = "."
	}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
	return b, true
}

// dependsOn decodes the list and map forms of depends_on.
func (s composeService) dependsOn(t *testing.T) []string {
	t.Helper()
	var out []string
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		if err := s.DependsOn.Decode(&out); err != nil {
			t.Fatal(err)
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := s.DependsOn.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for name, d := range m {
			switch d.Condition {
			case "", "service_started", "service_healthy", "service_completed_successfully":
			default:
				t.Errorf("depends_on %s: unknown condition %q", name, d.Condition)
			}
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// env decodes the map and list forms of environment, with ${VAR:-default} interpolated as
// Compose would with VAR unset.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch s.Environment.Kind {
	case yaml.MappingNode:
		var m map[string]string
		if err := s.Environment.Decode(&m); err != nil {
			t.Fatalf("environment: %v", err)
		}
		for k, v := range m {
			out[k] = interpolate(v)
		}
	case yaml.SequenceNode:
		var l []string
		if err := s.Environment.Decode(&l); err != nil {
			t.Fatalf("environment: %v", err)
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = interpolate(v)
		}
	}
	return out
}

var reInterp = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

func interpolate(s string) string {
	return reInterp.ReplaceAllString(s, "$2")
}

type mount struct{ source, target string }

// binds decodes a service's bind mounts (short and long syntax); named volumes must be declared.
func (s composeService) binds(t *testing.T, name string, declared map[string]any) []mount {
	t.Helper()
	var out []mount
	for _, n := range s.Volumes {
		var src, dst, typ string
		switch n.Kind {
		case yaml.ScalarNode:
			parts := strings.Split(n.Value, ":")
			if len(parts) < 2 || len(parts) > 3 {
				t.Errorf("%s: volume %q is not source:target[:mode]", name, n.Value)
				continue
			}
			src, dst = parts[0], parts[1]
			if len(parts) == 3 {
				for _, opt := range strings.Split(parts[2], ",") {
					if !slices.Contains([]string{"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}, opt) {
						t.Errorf("%s: volume %q has unknown mode %q", name, n.Value, opt)
					}
				}
			}
			typ = "volume"
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~") {
				typ = "bind"
			}
		case yaml.MappingNode:
			var v struct{ Type, Source, Target string }
			if err := n.Decode(&v); err != nil {
				t.Fatal(err)
			}
			typ, src, dst = v.Type, v.Source, v.Target
		}
		if !path.IsAbs(dst) {
			t.Errorf("%s: volume target %q is not absolute", name, dst)
		}
		switch typ {
		case "bind":
			if !strings.HasPrefix(src, "./") {
				t.Errorf("%s: bind mount %q is not relative to the repository (./...), so not portable", name, src)
				continue
			}
			if !exists(t, src) {
				t.Errorf("%s: bind-mounted %s does not exist in the repository", name, src)
			}
			out = append(out, mount{source: path.Clean(src), target: path.Clean(dst)})
		case "volume":
			if _, ok := declared[src]; src != "" && !ok {
				t.Errorf("%s: named volume %q is not declared under volumes:", name, src)
			}
		}
	}
	return out
}

// hostPath maps a path inside a service's container back to the repository through its bind
// mounts (longest target first), or "" when it is not mounted.
func hostPath(mounts []mount, p string) string {
	best := -1
	for i, m := range mounts {
		if (p == m.target || strings.HasPrefix(p, m.target+"/")) && (best < 0 || len(m.target) > len(mounts[best].target)) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return path.Join(mounts[best].source, strings.TrimPrefix(p, mounts[best].target))
}

var rePort = regexp.MustCompile(`^(?:(?:\[[0-9A-Fa-f:]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$`)

func validPort(s string) bool {
	if s == "" {
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// parseShortPort parses Compose's short port syntax, [ip:][host[-host]:]container[-container][/proto],
// into the published host port with its protocol ("8080/tcp", "" when none) and the container port.
func parseShortPort(s string) (published, container string, ok bool) {
	m := rePort.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	for _, p := range m[1:5] {
		if !validPort(p) {
			return "", "", false
		}
	}
	if m[1] != "" {
		published = m[1] + "/" + cmpOr(m[5], "tcp")
	}
	return published, m[3], true
}

func TestComposePortSyntax(t *testing.T) {
	for s, want := range map[string]string{
		"8080:8080":               "8080/tcp",
		"127.0.0.1:3000:3000":     "3000/tcp",
		"[::1]:9090:9090":         "9090/tcp",
		"9000":                    "",
		"6831:6831/udp":           "6831/udp",
		"8000-8010:8000-8010/tcp": "8000/tcp",
		"0.0.0.0:16686:16686/tcp": "16686/tcp",
	} {
		if got, _, ok := parseShortPort(s); !ok || got != want {
			t.Errorf("%q: published %q ok %v, want %q", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "abc", "80:80:80:80", "70000:80", "8080:0", "80/icmp", "localhost:80:80"} {
		if _, _, ok := parseShortPort(s); ok {
			t.Errorf("%q accepted", s)
		}
	}
}

// ports decodes published ports; it returns the host ports published and the container ports.
func (s composeService) ports(t *testing.T, name string) (published, container []string) {
	t.Helper()
	for _, n := range s.Ports {
		switch n.Kind {
		case yaml.ScalarNode:
			pub, ctr, ok := parseShortPort(n.Value)
			if !ok {
				t.Errorf("%s: port %q is malformed", name, n.Value)
				continue
			}
			if pub != "" {
				published = append(published, pub)
			}
			container = append(container, ctr)
		case yaml.MappingNode:
			var v struct {
				Target    int    `yaml:"target"`
				Published string `yaml:"published"`
				Protocol  string `yaml:"protocol"`
			}
			if err := n.Decode(&v); err != nil {
				t.Errorf("%s: port: %v", name, err)
				continue
			}
			if !validPort(strconv.Itoa(v.Target)) || !validPort(v.Published) {
				t.Errorf("%s: port %+v is out of range", name, v)
			}
			if v.Published != "" {
				published = append(published, v.Published+"/"+cmpOr(v.Protocol, "tcp"))
			}
			container = append(container, strconv.Itoa(v.Target))
		}
	}
	for _, n := range s.Expose {
		if !regexp.MustCompile(`^\d+(?:/(tcp|udp))?$`).MatchString(n.Value) || !validPort(strings.Split(n.Value, "/")[0]) {
			t.Errorf("%s: expose %q is malformed", name, n.Value)
		}
	}
	return published, container
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)

	for _, want := range []string{"redis", "edge1", "edge2", "lb", "function", "prometheus", "grafana", "otel-collector", "jaeger"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("service %s missing", want)
		}
	}

	hostPorts := map[string]string{}
	for name, s := range c.Services {
		b, hasBuild := s.build(t)
		if !hasBuild && s.Image == "" {
			t.Errorf("%s: neither image nor build", name)
		}
		if hasBuild {
			if !exists(t, b.Context) {
				t.Errorf("%s: build context %s does not exist", name, b.Context)
			}
			df := path.Join(b.Context, b.Dockerfile)
			if !exists(t, df) {
				t.Errorf("%s: Dockerfile %s does not exist", name, df)
			} else if b.Target != "" {
				if st := parseDockerfile(t, df).stage(b.Target); st == nil {
					t.Errorf("%s: build target %q is not a stage of %s", name, b.Target, df)
				}
			}
		}
		for _, dep := range s.dependsOn(t) {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
			if dep == name {
				t.Errorf("%s depends on itself", name)
			}
		}
		s.binds(t, name, c.Volumes)
		published, _ := s.ports(t, name)
		for _, p := range published {
			if other, dup := hostPorts[p]; dup {
				t.Errorf("host port %s published by both %s and %s", p, other, name)
			}
			hostPorts[p] = name
		}
	}
	if t.Failed() {
		return
	}

	// The wiring the stack depends on.
	nodes := map[string]bool{}
	for _, name := range []string{"edge1", "edge2"} {
		e := c.Services[name].env(t)
		if e["REDIS_ADDR"] != "redis:6379" {
			t.Errorf("%s: REDIS_ADDR = %q", name, e["REDIS_ADDR"])
		}
		if e["NODE_ID"] == "" || nodes[e["NODE_ID"]] {
			t.Errorf("%s: NODE_ID %q empty or not unique", name, e["NODE_ID"])
		}
		nodes[e["NODE_ID"]] = true
		if e["ADMIN_TOKEN"] == "" {
			t.Errorf("%s: ADMIN_TOKEN has no default", name)
		}
		if p := cmpOr(e["PORT"], "8080"); p != "8080" {
			t.Errorf("%s: PORT = %s, the load balancer and Prometheus expect 8080", name, p)
		}
		u, err := url.Parse(e["OTEL_EXPORTER_OTLP_ENDPOINT"])
		if err != nil || u.Scheme != "http" || u.Hostname() != "otel-collector" || u.Port() != "4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT = %q, want http://otel-collector:4318", name, e["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
	}
	var fnCmd []string
	fnSvc := c.Services["function"]
	if err := fnSvc.Command.Decode(&fnCmd); err != nil || !slices.Equal(fnCmd, []string{"-addr", "0.0.0.0:9000"}) {
		t.Errorf("function command = %v, want [-addr 0.0.0.0:9000]", fnCmd)
	}
	if pub, _ := c.Services["lb"].ports(t, "lb"); !slices.Contains(pub, "8080/tcp") {
		t.Errorf("lb does not publish 8080: %v", pub)
	}
	if pub, _ := c.Services["grafana"].ports(t, "grafana"); !slices.Contains(pub, "3000/tcp") {
		t.Errorf("grafana does not publish 3000: %v", pub)
	}
	if pub, _ := c.Services["jaeger"].ports(t, "jaeger"); !slices.Contains(pub, "16686/tcp") {
		t.Errorf("jaeger does not publish its UI on 16686: %v", pub)
	}
	g := c.Services["grafana"].env(t)
	if g["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || g["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Errorf("grafana is not open to anonymous viewers: %v", g)
	}
	if home := g["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if hp := hostPath(c.Services["grafana"].binds(t, "grafana", c.Volumes), home); hp == "" || !exists(t, hp) {
			t.Errorf("grafana home dashboard %s is not a mounted file", home)
		}
	}
}

// mountedConfig checks that service mounts rel at target, so the file in the repository is the one
// the container reads.
func mountedConfig(t *testing.T, c composeFile, service, target, rel string) {
	t.Helper()
	s, ok := c.Services[service]
	if !ok {
		t.Fatalf("service %s missing", service)
	}
	if got := hostPath(s.binds(t, service, c.Volumes), target); got != rel {
		t.Errorf("%s reads %s from %q, want %s", service, target, got, rel)
	}
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and .dockerignore

type dfInstr struct{ cmd, args string }

type dfStage struct {
	base, name string
	instrs     []dfInstr
}

type dockerfile struct{ stages []*dfStage }

func (d dockerfile) stage(name string) *dfStage {
	for _, s := range d.stages {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// chain is s and the stages it is built FROM, nearest first.
func (d dockerfile) chain(s *dfStage) []*dfStage {
	var out []*dfStage
	for s != nil && len(out) <= len(d.stages) {
		out = append(out, s)
		s = d.stage(s.base)
	}
	return out
}

var reArgRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func parseDockerfile(t *testing.T, rel string) dockerfile {
	t.Helper()
	var d dockerfile
	globalArgs := map[string]string{}
	var logical strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, rel))))
	var lines []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			logical.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		logical.WriteString(line)
		if l := strings.TrimSpace(logical.String()); l != "" {
			lines = append(lines, l)
		}
		logical.Reset()
	}
	if strings.TrimSpace(logical.String()) != "" {
		t.Fatalf("%s ends inside a line continuation", rel)
	}
	var cur *dfStage
	for _, l := range lines {
		cmd, args, _ := strings.Cut(l, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		switch {
		case cmd == "FROM":
			f := strings.Fields(args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--platform=") })
			if len(f) != 1 && (len(f) != 3 || !strings.EqualFold(f[1], "AS")) {
				t.Fatalf("%s: bad FROM %q", rel, l)
			}
			cur = &dfStage{base: reArgRef.ReplaceAllStringFunc(f[0], func(ref string) string {
				return globalArgs[reArgRef.FindStringSubmatch(ref)[1]]
			})}
			if len(f) == 3 {
				cur.name = f[2]
			}
			d.stages = append(d.stages, cur)
		case cur == nil && cmd == "ARG":
			k, v, _ := strings.Cut(args, "=")
			globalArgs[k] = v
		case cur == nil:
			t.Fatalf("%s: %s before the first FROM", rel, cmd)
		default:
			cur.instrs = append(cur.instrs, dfInstr{cmd, args})
		}
	}
	if len(d.stages) == 0 {
		t.Fatalf("%s has no FROM", rel)
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t, "Dockerfile")
	final := d.stages[len(d.stages)-1]
	if final.name != "edge" {
		t.Errorf("the default (last) stage is %q, want edge", final.name)
	}
	var goPkgs []string
	for _, target := range []string{"edge", "function"} {
		st := d.stage(target)
		if st == nil {
			t.Errorf("no %s stage", target)
			continue
		}
		if !strings.HasPrefix(st.base, "gcr.io/distroless/") && !strings.HasPrefix(st.base, "alpine") {
			t.Errorf("%s runs on %s, want distroless or alpine", target, st.base)
		}
		var user, expose string
		var entry bool
		for _, in := range st.instrs {
			switch in.cmd {
			case "USER":
				user = in.args
			case "EXPOSE":
				expose = in.args
			case "ENTRYPOINT", "CMD":
				entry = true
			case "COPY":
				if m := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(in.args); m != nil {
					from := d.stage(m[1])
					if from == nil {
						t.Errorf("%s copies from unknown stage %s", target, m[1])
						continue
					}
					if !slices.ContainsFunc(d.chain(from), func(s *dfStage) bool { return strings.HasPrefix(s.base, "golang:1.26") }) {
						t.Errorf("%s is not built on golang:1.26", m[1])
					}
					cgoOff := false
					for _, s := range d.chain(from) {
						for _, in := range s.instrs {
							if (in.cmd == "ENV" || in.cmd == "RUN") && strings.Contains(in.args, "CGO_ENABLED=0") {
								cgoOff = true
							}
							if in.cmd == "RUN" {
								for _, m := range regexp.MustCompile(`go build\b.*?\s(\./\S+)`).FindAllStringSubmatch(in.args, -1) {
									goPkgs = append(goPkgs, m[1])
								}
							}
						}
					}
					if !cgoOff {
						t.Errorf("%s builds with cgo (want CGO_ENABLED=0)", m[1])
					}
				}
			}
		}
		if u := strings.Split(user, ":")[0]; u == "" || u == "root" || u == "0" {
			t.Errorf("%s runs as %q, want a non-root user", target, user)
		}
		if !entry {
			t.Errorf("%s has no ENTRYPOINT", target)
		}
		if target == "edge" && !slices.Contains(strings.Fields(expose), "8080") {
			t.Errorf("edge exposes %q, want 8080", expose)
		}
	}
	if !slices.Contains(goPkgs, "./cmd/edge") || !slices.Contains(goPkgs, "./examples/functions") {
		t.Errorf("go build targets %v, want ./cmd/edge and ./examples/functions", goPkgs)
	}

	// .dockerignore must not hide what the build copies.
	var ignore []string
	for _, l := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignore = append(ignore, strings.TrimPrefix(l, "/"))
		}
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd/edge/main.go", "examples/functions/main.go", "metrics/metrics.go"} {
		for _, pat := range ignore {
			p := strings.TrimSuffix(strings.TrimPrefix(pat, "**/"), "/")
			if ok, _ := path.Match(p, need); ok || strings.HasPrefix(need, p+"/") {
				t.Errorf(".dockerignore pattern %q hides %s", pat, need)
			}
		}
	}

	// The packages built are written by other parts of the project; report them missing without
	// failing until they land.
	t.Run("built packages exist", func(t *testing.T) {
		var missing []string
		for _, p := range goPkgs {
			if ms, _ := filepath.Glob(filepath.Join(repoRoot(t), filepath.FromSlash(p), "*.go")); len(ms) == 0 {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			t.Skipf("not in the tree yet: %v", missing)
		}
	})
}

// ---------------------------------------------------------------------------------------------
// deploy/nginx.conf

type ngxDirective struct {
	name     string
	args     []string
	children []*ngxDirective
	block    bool
}

func (d *ngxDirective) all(name string) []*ngxDirective {
	var out []*ngxDirective
	for _, c := range d.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func (d *ngxDirective) one(t *testing.T, name string) *ngxDirective {
	t.Helper()
	all := d.all(name)
	if len(all) != 1 {
		t.Fatalf("nginx: want one %s in %s, found %d", name, d.name, len(all))
	}
	return all[0]
}

// parseNginx parses nginx's configuration syntax: directives ended by ";" or holding a "{...}"
// block, "#" comments, quoted arguments.
func parseNginx(t *testing.T, src string) *ngxDirective {
	t.Helper()
	var tokens []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			tokens = append(tokens, string(c))
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				t.Fatal("nginx: unterminated string")
			}
			tokens = append(tokens, "\x00"+src[i+1:j]) // \x00 marks a quoted argument
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}#", rune(src[j])) {
				j++
			}
			tokens = append(tokens, src[i:j])
			i = j
		}
	}
	root := &ngxDirective{name: "main", block: true}
	stack := []*ngxDirective{root}
	var words []string
	for _, tok := range tokens {
		top := stack[len(stack)-1]
		switch tok {
		case ";":
			if len(words) == 0 {
				t.Fatal("nginx: empty directive")
			}
			top.children = append(top.children, &ngxDirective{name: words[0], args: words[1:]})
			words = nil
		case "{":
			if len(words) == 0 {
				t.Fatal("nginx: block without a name")
			}
			d := &ngxDirective{name: words[0], args: words[1:], block: true}
			top.children = append(top.children, d)
			stack = append(stack, d)
			words = nil
		case "}":
			if len(words) > 0 {
				t.Fatalf("nginx: directive %v not ended by ;", words)
			}
			if len(stack) == 1 {
				t.Fatal("nginx: unbalanced }")
			}
			stack = stack[:len(stack)-1]
		default:
			words = append(words, strings.TrimPrefix(tok, "\x00"))
		}
	}
	if len(stack) != 1 || len(words) > 0 {
		t.Fatal("nginx: unterminated block or directive")
	}
	return root
}

// nginxSeconds parses an nginx time ("90", "30s", "1h", "1h30m").
func nginxSeconds(s string) (time.Duration, error) {
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	return time.ParseDuration(s)
}

func TestNginxConfKeepsSSEUnbuffered(t *testing.T) {
	c := loadCompose(t)
	mountedConfig(t, c, "lb", "/etc/nginx/nginx.conf", "deploy/nginx.conf")

	root := parseNginx(t, string(readFile(t, "deploy/nginx.conf")))
	root.one(t, "events")
	http := root.one(t, "http")

	upstreams := map[string]*ngxDirective{}
	for _, u := range http.all("upstream") {
		upstreams[u.args[0]] = u
	}
	srv := http.one(t, "server")
	if l := srv.one(t, "listen"); l.args[0] != "8080" {
		t.Errorf("listens on %v, want 8080", l.args)
	}
	var loc *ngxDirective
	for _, l := range srv.all("location") {
		if slices.Equal(l.args, []string{"/"}) {
			loc = l
		}
	}
	if loc == nil {
		t.Fatal("no location /")
	}
	arg := func(name string) string {
		t.Helper()
		ds := loc.all(name)
		if len(ds) == 0 {
			ds = append(srv.all(name), http.all(name)...) // inherited
		}
		if len(ds) == 0 {
			t.Errorf("%s not set", name)
			return ""
		}
		return strings.Join(ds[0].args, " ")
	}
	for name, want := range map[string]string{
		"proxy_buffering":    "off",
		"proxy_cache":        "off",
		"proxy_http_version": "1.1",
	} {
		if got := arg(name); got != want {
			t.Errorf("%s %s, want %s", name, got, want)
		}
	}
	if d, err := nginxSeconds(arg("proxy_read_timeout")); err != nil || d < time.Hour {
		t.Errorf("proxy_read_timeout %s, want at least 1h (%v)", arg("proxy_read_timeout"), err)
	}
	connCleared := false
	for _, h := range loc.all("proxy_set_header") {
		if len(h.args) == 2 && strings.EqualFold(h.args[0], "Connection") && h.args[1] == "" {
			connCleared = true
		}
	}
	if !connCleared {
		t.Error(`proxy_set_header Connection "" missing: the upstream would see Connection: close`)
	}

	pass, err := url.Parse(arg("proxy_pass"))
	if err != nil || pass.Scheme != "http" {
		t.Fatalf("proxy_pass %q", arg("proxy_pass"))
	}
	up := upstreams[pass.Host]
	if up == nil {
		t.Fatalf("proxy_pass to %s, which is not an upstream", pass.Host)
	}
	var servers []string
	for _, s := range up.all("server") {
		host, port, err := net.SplitHostPort(s.args[0])
		if err != nil {
			t.Errorf("upstream server %q: %v", s.args[0], err)
			continue
		}
		if _, ok := c.Services[host]; !ok {
			t.Errorf("upstream server %s is not a compose service", host)
		}
		if port != "8080" {
			t.Errorf("upstream server %s not on the edge port 8080", s.args[0])
		}
		servers = append(servers, s.args[0])
	}
	slices.Sort(servers)
	if !slices.Equal(servers, []string{"edge1:8080", "edge2:8080"}) {
		t.Errorf("upstream servers %v, want edge1:8080 and edge2:8080", servers)
	}
}

// ---------------------------------------------------------------------------------------------
// Prometheus, OpenTelemetry collector, Grafana provisioning

func TestPrometheusConfig(t *testing.T) {
	c := loadCompose(t)
	mountedConfig(t, c, "prometheus", "/etc/prometheus/prometheus.yml", "dashboards/prometheus.yml")

	var cfg struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "dashboards/prometheus.yml", &cfg)
	if _, err := time.ParseDuration(cfg.Global.ScrapeInterval); err != nil {
		t.Errorf("scrape_interval %q: %v", cfg.Global.ScrapeInterval, err)
	}
	var edgeTargets []string
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if jobs[sc.JobName] {
			t.Errorf("job %s defined twice", sc.JobName)
		}
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("target %q: %v", target, err)
					continue
				}
				if _, ok := c.Services[host]; !ok && host != "localhost" {
					t.Errorf("job %s scrapes %s, not a compose service", sc.JobName, host)
				}
				if sc.JobName == "sseedge" {
					edgeTargets = append(edgeTargets, target)
				}
			}
		}
		if sc.JobName == "sseedge" && cmpOr(sc.MetricsPath, "/metrics") != "/metrics" {
			t.Errorf("sseedge metrics_path %q", sc.MetricsPath)
		}
	}
	slices.Sort(edgeTargets)
	if !slices.Equal(edgeTargets, []string{"edge1:8080", "edge2:8080"}) {
		t.Errorf("job sseedge scrapes %v, want edge1:8080 and edge2:8080", edgeTargets)
	}
}

func TestOtelCollectorConfig(t *testing.T) {
	c := loadCompose(t)
	var cmd []string
	col := c.Services["otel-collector"]
	if err := col.Command.Decode(&cmd); err != nil {
		t.Fatal(err)
	}
	configPath := "/etc/otelcol/config.yaml" // the image's default
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			configPath = v
		} else if a == "--config" && i+1 < len(cmd) {
			configPath = cmd[i+1]
		}
	}
	mountedConfig(t, c, "otel-collector", configPath, "dashboards/otel-collector.yml")

	var cfg struct {
		Receivers  map[string]map[string]any `yaml:"receivers"`
		Processors map[string]any            `yaml:"processors"`
		Exporters  map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"exporters"`
		Extensions map[string]any `yaml:"extensions"`
		Service    struct {
			Extensions []string `yaml:"extensions"`
			Pipelines  map[string]struct {
				Receivers, Processors, Exporters []string
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	readYAML(t, "dashboards/otel-collector.yml", &cfg)

	var protocols struct {
		Protocols map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"protocols"`
	}
	b, _ := yaml.Marshal(cfg.Receivers["otlp"])
	if err := yaml.Unmarshal(b, &protocols); err != nil {
		t.Fatal(err)
	}
	for proto, port := range map[string]string{"grpc": "4317", "http": "4318"} {
		ep := protocols.Protocols[proto].Endpoint
		if host, p, err := net.SplitHostPort(ep); err != nil || host != "0.0.0.0" || p != port {
			t.Errorf("otlp %s receiver endpoint %q, want 0.0.0.0:%s (reachable from other containers)", proto, ep, port)
		}
	}

	traces, ok := cfg.Service.Pipelines["traces"]
	if !ok {
		t.Fatal("no traces pipeline")
	}
	for _, r := range traces.Receivers {
		if _, ok := cfg.Receivers[r]; !ok {
			t.Errorf("pipeline receiver %s not defined", r)
		}
	}
	for _, p := range traces.Processors {
		if _, ok := cfg.Processors[p]; !ok {
			t.Errorf("pipeline processor %s not defined", p)
		}
	}
	for _, e := range cfg.Service.Extensions {
		if _, ok := cfg.Extensions[e]; !ok {
			t.Errorf("extension %s not defined", e)
		}
	}
	toJaeger := false
	for _, e := range traces.Exporters {
		exp, ok := cfg.Exporters[e]
		if !ok {
			t.Errorf("pipeline exporter %s not defined", e)
			continue
		}
		typ, _, _ := strings.Cut(e, "/")
		if typ == "otlp" || typ == "otlp_grpc" {
			host, port, err := net.SplitHostPort(exp.Endpoint)
			if err != nil {
				t.Errorf("exporter %s endpoint %q: %v", e, exp.Endpoint, err)
				continue
			}
			if _, ok := c.Services[host]; !ok {
				t.Errorf("exporter %s sends to %s, not a compose service", e, host)
			}
			toJaeger = toJaeger || (host == "jaeger" && port == "4317")
		}
	}
	if !toJaeger {
		t.Error("traces are not exported to jaeger:4317 over OTLP")
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	c := loadCompose(t)
	grafana := c.Services["grafana"]
	mounts := grafana.binds(t, "grafana", c.Volumes)
	if hp := hostPath(mounts, "/etc/grafana/provisioning"); hp != "dashboards/provisioning" {
		t.Errorf("grafana provisioning comes from %q, want dashboards/provisioning", hp)
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL, Access string
		} `yaml:"datasources"`
	}
	readYAML(t, "dashboards/provisioning/datasources/datasources.yml", &ds)
	if ds.APIVersion != 1 {
		t.Errorf("datasources apiVersion %d", ds.APIVersion)
	}
	types := map[string]bool{}
	for _, d := range ds.Datasources {
		types[d.Type] = true
		u, err := url.Parse(d.URL)
		if err != nil || u.Hostname() == "" {
			t.Errorf("datasource %s url %q", d.Name, d.URL)
			continue
		}
		if _, ok := c.Services[u.Hostname()]; !ok {
			t.Errorf("datasource %s points at %s, not a compose service", d.Name, u.Hostname())
		}
		if d.Type == "prometheus" && (d.UID != "prometheus" || d.URL != "http://prometheus:9090") {
			t.Errorf("prometheus datasource uid %q url %q, want prometheus at http://prometheus:9090", d.UID, d.URL)
		}
	}
	if !types["prometheus"] || !(types["jaeger"] || types["tempo"]) {
		t.Errorf("datasource types %v, want prometheus and jaeger or tempo", types)
	}

	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "dashboards/provisioning/dashboards/sseedge.yml", &prov)
	if prov.APIVersion != 1 || len(prov.Providers) == 0 {
		t.Fatalf("dashboard provisioning: %+v", prov)
	}
	for _, p := range prov.Providers {
		if p.Type != "file" {
			t.Errorf("provider %s type %q", p.Name, p.Type)
		}
		hp := hostPath(mounts, p.Options.Path)
		for _, f := range []string{"edge.json", "functions.json", "redis.json"} {
			if hp == "" || !exists(t, path.Join(hp, f)) {
				t.Errorf("provider %s path %s does not hold %s (host %q)", p.Name, p.Options.Path, f, hp)
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Dashboards

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Datasource *grafanaDatasource `json:"datasource"`
			Definition string             `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaDatasource struct{ Type, UID string }

type grafanaPanel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource *grafanaDatasource        `json:"datasource"`
	GridPos    *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

var (
	rePromString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	rePromMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	rePromRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	rePromGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	rePromOffset   = regexp.MustCompile(`\boffset\s+-?(?:\d+(?:ms|[smhdwy]))+`)
	rePromNumber   = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b`)
	rePromIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	rePromKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// promMetricNames returns the metric names a PromQL expression selects: identifiers left once
// strings, label matchers, ranges, grouping clauses, offsets and numbers are removed, except function calls
// and keywords.
func promMetricNames(expr string) []string {
	s := rePromString.ReplaceAllString(expr, " ")
	s = rePromMatchers.ReplaceAllString(s, " ")
	s = rePromRange.ReplaceAllString(s, " ")
	s = rePromGrouping.ReplaceAllString(s, " ")
	s = rePromOffset.ReplaceAllString(s, " ")
	s = rePromNumber.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range rePromIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(rePromKeywords, strings.ToLower(name)) {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestPromMetricNames(t *testing.T) {
	got := promMetricNames(`histogram_quantile(0.99, sum by (function, le) (rate(sseedge_invocation_duration_seconds_bucket{function=~"$function",instance=~"$instance"}[$__rate_interval]))) / clamp_min(sum(sseedge_connections), 1e-9) and on (instance) up offset 5m`)
	want := []string{"sseedge_invocation_duration_seconds_bucket", "sseedge_connections", "up"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// exportedFamilies gathers what a node serves on /metrics: New's collectors after one observation
// each, plus the Go and process collectors of NewRegistry.
func exportedFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	reg := NewRegistry()
	touchAll(New(reg))
	return gather(t, reg)
}

// resolveMetric maps a queried series name to the family exporting it: histograms and summaries
// export _bucket, _sum and _count series under the family name.
func resolveMetric(fams map[string]*dto.MetricFamily, name string) (family string, ok bool) {
	if _, ok := fams[name]; ok {
		return name, true
	}
	for suffix, types := range map[string][]dto.MetricType{
		"_bucket": {dto.MetricType_HISTOGRAM},
		"_sum":    {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_count":  {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
	} {
		if base, cut := strings.CutSuffix(name, suffix); cut {
			if mf, ok := fams[base]; ok && slices.Contains(types, mf.GetType()) {
				return base, true
			}
		}
	}
	return "", false
}

func TestDashboardsQueryExportedMetrics(t *testing.T) {
	fams := exportedFamilies(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"edge.json", "functions.json", "redis.json"}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("dashboards/%s missing", w)
		}
	}

	used := map[string]bool{}
	uids := map[string]string{}
	for _, f := range files {
		base := filepath.Base(f)
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		if err := dec.Decode(&d); err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q title %q schemaVersion %d, %d panels", base, d.UID, d.Title, d.SchemaVersion, len(d.Panels))
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", base, other, d.UID)
		}
		uids[d.UID] = base

		checkExpr := func(where, expr string) {
			if strings.TrimSpace(expr) == "" {
				t.Errorf("%s: %s has an empty query", base, where)
				return
			}
			if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
				t.Errorf("%s: %s: unbalanced query %q", base, where, expr)
			}
			if strings.Contains(expr, "_bucket") && !regexp.MustCompile(`\ble\b`).MatchString(expr) {
				t.Errorf("%s: %s aggregates buckets without keeping le: %q", base, where, expr)
			}
			for _, name := range promMetricNames(expr) {
				family, ok := resolveMetric(fams, name)
				if !ok {
					t.Errorf("%s: %s queries %s, which is not exported", base, where, name)
					continue
				}
				used[family] = true
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			if v.Datasource == nil || v.Datasource.UID != "prometheus" {
				t.Errorf("%s: variable %s datasource %+v", base, v.Name, v.Datasource)
			}
			if m := regexp.MustCompile(`^label_values\(\s*([^,]+),\s*\w+\s*\)$`).FindStringSubmatch(v.Definition); m != nil {
				checkExpr("variable "+v.Name, m[1])
			}
		}

		ids := map[int]bool{}
		var walk func(ps []grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if p.ID == 0 || ids[p.ID] {
					t.Errorf("%s: %s: id missing or repeated", base, where)
				}
				ids[p.ID] = true
				if p.Type == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
					t.Errorf("%s: %s: missing type or bad gridPos", base, where)
				}
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: %s has no queries", base, where)
				}
				if p.Datasource == nil || p.Datasource.UID != "prometheus" {
					t.Errorf("%s: %s datasource %+v, want uid prometheus", base, where, p.Datasource)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					if tg.RefID == "" || refs[tg.RefID] {
						t.Errorf("%s: %s: refId %q missing or repeated", base, where, tg.RefID)
					}
					refs[tg.RefID] = true
					if tg.Datasource != nil && tg.Datasource.UID != "prometheus" {
						t.Errorf("%s: %s: target datasource %+v", base, where, tg.Datasource)
					}
					checkExpr(where, tg.Expr)
				}
			}
		}
		walk(d.Panels)
	}

	// And the other way round: every sseedge metric is on some dashboard.
	for name := range fams {
		if strings.HasPrefix(name, Namespace+"_") && !used[name] {
			t.Errorf("%s is exported but on no dashboard", name)
		}
	}
}
