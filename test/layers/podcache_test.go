package layers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The manager's cache holds pods as podview.Pods (internal/podview). Code
// that still expects a corev1.Pod from it compiles and fails in silence: a
// type assertion in a predicate, an index or a map function drops every
// event, and controller-runtime's cache reader refuses a Get or List of
// corev1.Pods only when a pod matches, so a test without one passes. And
// a podview.Pod's TrimmedSpec has no node name: reading it gives "".
//
// podCacheReaders are the directories whose production code reads the
// manager's cache; podAllowed the files there that handle a corev1.Pod
// for a reason other than reading the cache. A line may also say so in a
// comment containing "not a cached pod" (a watch's prototype object, say).
var (
	podCacheReaders = []string{"controllers", "webhooks", "cmd/manager", "internal/addrindex", "internal/app",
		"internal/rules", "internal/hostnet", "internal/netpol", "internal/workloads", "internal/policyindex"}
	podAllowed = map[string]string{
		"webhooks/slimdecode.go":   "decodes the pod of an admission review",
		"internal/rules/review.go": "judges the old and new pods of an admission review",
	}
)

func TestNothingExpectsACorePodFromTheCache(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	var problems []string
	var excused map[int]bool
	report := func(fset *token.FileSet, n ast.Node, what string) {
		if pos := fset.Position(n.Pos()); !excused[pos.Line] {
			problems = append(problems, pos.String()+": "+what)
		}
	}
	core := "corev1" // the file's name for k8s.io/api/core/v1
	isCore := func(e ast.Expr, name string) bool {
		if s, ok := e.(*ast.StarExpr); ok {
			e = s.X
		}
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		pkg, ok := sel.X.(*ast.Ident)
		return ok && pkg.Name == core && sel.Sel.Name == name
	}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || rel == "bin" || rel == "test" || rel == "hack" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || rel == "internal/podview/pod.go" {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		checked++
		core = ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"k8s.io/api/core/v1"` {
				core = "v1"
				if imp.Name != nil {
					core = imp.Name.Name
				}
			}
		}
		excused = map[int]bool{}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if strings.Contains(c.Text, "not a cached pod") {
					excused[fset.Position(c.Pos()).Line] = true
				}
			}
		}
		reader := false
		for _, dir := range podCacheReaders {
			reader = reader || under(rel, dir)
		}
		reader = reader && podAllowed[rel] == ""
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.SelectorExpr); ok && x.Sel.Name == "TrimmedSpec" && n.Sel.Name == "NodeName" {
					report(fset, n, "TrimmedSpec.NodeName is always empty: read the pod's NodeName")
				}
				if reader && isCore(n, "PodList") {
					report(fset, n, "a corev1.PodList from the manager's cache: read pods through internal/clusterindex")
				}
			case *ast.TypeAssertExpr:
				if reader && n.Type != nil && isCore(n.Type, "Pod") {
					report(fset, n, "a type assertion to *corev1.Pod drops the cache's podview.Pods: use podview.From")
				}
			case *ast.CaseClause:
				views := false // case *podview.Pod, *corev1.Pod: both handled
				for _, e := range n.List {
					if s, ok := e.(*ast.StarExpr); ok {
						if sel, ok := s.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Pod" {
							if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "podview" {
								views = true
							}
						}
					}
				}
				for _, e := range n.List {
					if reader && !views && isCore(e, "Pod") {
						report(fset, e, "a case *corev1.Pod misses the cache's podview.Pods: use podview.From")
					}
				}
			case *ast.AssignStmt:
				// p := &corev1.Pod{}, a pod to Get into.
				for _, r := range n.Rhs {
					if u, ok := r.(*ast.UnaryExpr); ok && reader {
						if cl, ok := u.X.(*ast.CompositeLit); ok && isCore(cl.Type, "Pod") && len(cl.Elts) == 0 {
							report(fset, r, "an empty corev1.Pod to read into: read pods through internal/clusterindex")
						}
					}
				}
			case *ast.ValueSpec:
				if reader && n.Type != nil && isCore(n.Type, "Pod") {
					report(fset, n, "a corev1.Pod to read into: read pods through internal/clusterindex")
				}
				for _, v := range n.Values {
					if u, ok := v.(*ast.UnaryExpr); ok && reader {
						if cl, ok := u.X.(*ast.CompositeLit); ok && isCore(cl.Type, "Pod") && len(cl.Elts) == 0 {
							report(fset, v, "an empty corev1.Pod to read into: read pods through internal/clusterindex")
						}
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); reader && ok && id.Name == "new" && len(n.Args) == 1 && isCore(n.Args[0], "Pod") {
					report(fset, n, "a new corev1.Pod to read into: read pods through internal/clusterindex")
				}
				// c.Get(ctx, key, &corev1.Pod{}) or a pod declared for it.
				if sel, ok := n.Fun.(*ast.SelectorExpr); reader && ok && sel.Sel.Name == "Get" && len(n.Args) >= 3 {
					if u, ok := n.Args[2].(*ast.UnaryExpr); ok {
						if cl, ok := u.X.(*ast.CompositeLit); ok && isCore(cl.Type, "Pod") {
							report(fset, n, "a Get of a corev1.Pod from the manager's cache: use clusterindex.Pod")
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d files under %s: the walk is broken", checked, root)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
