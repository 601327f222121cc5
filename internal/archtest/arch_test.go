// Package archtest holds the import rules of the module: packages are the architecture, so the rules are
// a test rather than a convention.
package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sseedge/sseedge"

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, patterns...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// knows is what a package deals with directly: the concerns of which no package but cmd/edge (and test
// and load-test tools) may hold two.
func knows(t *testing.T, p pkg) []string {
	var out []string
	has := func(prefix string) bool {
		return slices.ContainsFunc(p.Imports, func(i string) bool { return i == prefix || strings.HasPrefix(i, prefix+"/") })
	}
	if has("github.com/cloudwego/netpoll") {
		out = append(out, "netpoll sockets")
	}
	if has("github.com/redis/rueidis") {
		out = append(out, "Redis")
	}
	if has("github.com/fasthttp/router") {
		out = append(out, "HTTP routing")
	}
	if outbound(t, p) {
		out = append(out, "outbound HTTP client")
	}
	return out
}

// outbound reports whether a package makes HTTP calls itself: it names an HTTP client type.
func outbound(t *testing.T, p pkg) bool {
	clients := map[string][]string{"fasthttp": {"Client", "HostClient", "PipelineClient"}, "http": {"Client", "Transport"}}
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return !found
			}
			if x, ok := sel.X.(*ast.Ident); ok && slices.Contains(clients[x.Name], sel.Sel.Name) {
				found = true
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// TestOneConcernPerPackage: no package but cmd/edge knows two of netpoll sockets, Redis, HTTP routing
// and the outbound HTTP client.
func TestOneConcernPerPackage(t *testing.T) {
	for _, p := range list(t, "./...") {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if rel == "/cmd/edge" || strings.HasPrefix(rel, "/loadtest") || strings.HasPrefix(rel, "/internal/") && strings.HasSuffix(rel, "test") {
			continue // the wiring, the load tools and the test rigs
		}
		if k := knows(t, p); len(k) > 1 {
			t.Errorf("%s knows %s; a package may know one", p.ImportPath, strings.Join(k, " and "))
		}
	}
}

// TestMCPHoldsStreamsWithoutNetpoll: MCP holds its streams through the transport contract.
func TestMCPHoldsStreamsWithoutNetpoll(t *testing.T) {
	for _, p := range list(t, "./mcp", "./api", "./node", "./transport") {
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "github.com/cloudwego/netpoll") || d == module+"/edge" {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
}

// TestOnlyCmdEdgeWires: only cmd/edge imports the transport and the API together; the arrows point
// down from it.
func TestOnlyCmdEdgeWires(t *testing.T) {
	for _, p := range list(t, "./...") {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if rel == "/cmd/edge" || strings.HasPrefix(rel, "/internal/teststack") {
			continue
		}
		if slices.Contains(p.Imports, module+"/cmd/edge") {
			t.Errorf("%s imports cmd/edge", p.ImportPath)
		}
		if slices.Contains(p.Imports, module+"/edge") && (slices.Contains(p.Imports, module+"/api") || slices.Contains(p.Imports, module+"/mcp")) {
			t.Errorf("%s wires the transport to the API: only cmd/edge may", p.ImportPath)
		}
	}
}
