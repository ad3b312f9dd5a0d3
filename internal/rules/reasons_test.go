package rules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReasonListsComplete fails when a Reason constant of the package is
// in none of ObjectReasons, AdmissionReasons and RuntimeReasons (or in
// more than one), so the lists
// the CLI, SARIF and the documentation test read cannot miss a new reason.
func TestReasonListsComplete(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]string{} // value -> constant name
	for _, pkg := range pkgs {
		for _, file := range pkg.Files {
			for _, decl := range file.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Errorf("%s is not a string literal", name.Name)
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						declared[v] = name.Name
					}
				}
			}
		}
	}
	if len(declared) < 8 {
		t.Fatalf("found only %d Reason constants: %v", len(declared), declared)
	}
	for v, name := range declared {
		n := 0
		for _, list := range [][]string{ObjectReasons, AdmissionReasons, RuntimeReasons} {
			if slices.Contains(list, v) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s (%q) must be in exactly one of ObjectReasons, AdmissionReasons and RuntimeReasons", name, v)
		}
	}
	for _, v := range append(append(slices.Clone(ObjectReasons), AdmissionReasons...), RuntimeReasons...) {
		if _, ok := declared[v]; !ok {
			t.Errorf("%q is listed but no Reason constant declares it", v)
		}
	}
}
