// Package layers checks the import layering of loopguard's packages (see
// docs/architecture.md): api/ at the bottom, then internal/, then the
// admission webhook (webhooks/) and the controllers (controllers/) side by
// side, then the binaries (cmd/) that wire them. A layer never imports a
// layer above it, even through another package, and nothing the product
// builds imports the tests (test/) or the developer tools (hack/).
package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/loopguard/loopguard"

// rules: the packages under dir (relative to the repository root) may not
// depend, directly or not, on a package under any of mayNot. Test files are
// not products and are not checked: a test may import whatever it needs.
var rules = []struct {
	dir    string
	mayNot []string
}{
	{"api", []string{"internal", "controllers", "webhooks", "cmd", "test", "hack"}},
	{"internal", []string{"controllers", "webhooks", "cmd", "test", "hack"}},
	{"webhooks", []string{"controllers", "cmd", "test", "hack"}},
	{"controllers", []string{"webhooks", "cmd", "test", "hack"}},
	{"cmd", []string{"test", "hack"}},
}

func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// imports is the import graph of the module's packages (go list, without
// test files), by path relative to the repository root.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, ok := relative(fields[0])
		if !ok {
			continue
		}
		graph[pkg] = nil
		for _, imp := range fields[1:] {
			if rel, ok := relative(imp); ok {
				graph[pkg] = append(graph[pkg], rel)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return graph
}

func relative(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// chain is the shortest import chain from pkg to a package under one of
// dirs, or nil.
func chain(graph map[string][]string, pkg string, dirs []string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != pkg && slices.ContainsFunc(dirs, func(d string) bool { return under(p, d) }) {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		for _, next := range graph[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return nil
}

func TestLayers(t *testing.T) {
	graph := imports(t)
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, r := range rules {
		checked := 0
		for _, p := range pkgs {
			if !under(p, r.dir) {
				continue
			}
			checked++
			if c := chain(graph, p, r.mayNot); c != nil {
				t.Errorf("%s/ may not import %s/: %s", r.dir, strings.Join(r.mayNot, "/, "), strings.Join(c, " -> "))
			}
		}
		if checked == 0 {
			t.Errorf("no package under %s/: the layer rules are stale", r.dir)
		}
	}
}

// TestChain checks the checker on a made-up graph.
func TestChain(t *testing.T) {
	graph := map[string][]string{
		"internal/app":   {"internal/slim", "internal/util"},
		"internal/util":  {"controllers"},
		"controllers":    {"internal/rules"},
		"internal/slim":  nil,
		"internal/rules": nil,
	}
	if got, want := chain(graph, "internal/app", []string{"controllers", "webhooks"}), []string{"internal/app", "internal/util", "controllers"}; !slices.Equal(got, want) {
		t.Errorf("chain = %v, want %v", got, want)
	}
	if got := chain(graph, "internal/slim", []string{"controllers"}); got != nil {
		t.Errorf("chain from a leaf = %v, want none", got)
	}
	if got := chain(graph, "controllers", []string{"controllers"}); got != nil {
		t.Errorf("a package is not its own dependency: %v", got)
	}
}
