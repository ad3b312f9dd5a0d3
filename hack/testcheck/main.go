// Command testcheck fails when a Test, Fuzz or Example function of the
// repository is run by none of the `go test` suites `make test` runs.
//
// The suites (module directory, build tags, packages, -run and -skip) are read
// from hack/tests.mk, the file the Makefile builds its `go test` lines from.
// Which files a suite compiles comes from `go list` with the suite's tags;
// which functions they declare, from the files themselves, by the rules
// cmd/go uses to build a test binary. (`go test -list` would give the same
// names, but it runs each package's TestMain: envtest, the dev cluster.)
//
//	go run ./hack/testcheck               # exit 1 and list every orphaned test
//	go run ./hack/testcheck -list-fuzz    # the fuzz targets, for make fuzz
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Suite is one `go test` run of make test.
type Suite struct {
	Name, Dir, Tags, Run, Skip string
	Pkgs                       []string
}

// Func is one function `go test` runs: a test, a fuzz target (its seed corpus)
// or an example with an output comment.
type Func struct {
	File string // relative to the repository root
	Line int
	Name string
}

func main() {
	suitesFile := flag.String("suites", "hack/tests.mk", "the suites file the Makefile includes")
	makefile := flag.String("makefile", "Makefile", "the Makefile that runs each suite with $(call go-test,<suite>,...)")
	listFuzz := flag.Bool("list-fuzz", false, "print every fuzz target as: <module dir> <tags> <package dir> <name>")
	flag.Parse()
	f, err := os.Open(*suitesFile)
	if err != nil {
		fail(err)
	}
	suites, err := ParseSuites(f)
	f.Close()
	if err != nil {
		fail(fmt.Errorf("%s: %w", *suitesFile, err))
	}
	if *listFuzz {
		if err := printFuzz(os.Stdout, suites); err != nil {
			fail(err)
		}
		return
	}
	all, err := AllFuncs(".")
	if err != nil {
		fail(err)
	}
	covered := map[Func]bool{}
	var problems []string
	mk, err := os.ReadFile(*makefile)
	if err != nil {
		fail(err)
	}
	for _, s := range suites {
		if !bytes.Contains(mk, []byte("$(call go-test,"+s.Name+",")) {
			problems = append(problems, fmt.Sprintf("suite %s: %s never runs it with $(call go-test,%s,...)", s.Name, *makefile, s.Name))
		}
	}
	for _, s := range suites {
		n := 0
		err := suiteFuncs(s, func(_ string, fn Func) {
			if s.Runs(fn.Name) {
				covered[fn] = true
				n++
			}
		})
		if err != nil {
			fail(fmt.Errorf("suite %s: %w", s.Name, err))
		}
		if n == 0 {
			problems = append(problems, fmt.Sprintf("suite %s (%s -tags %q -run %q -skip %q) runs no test", s.Name, strings.Join(s.Pkgs, " "), s.Tags, s.Run, s.Skip))
		}
	}
	orphans := 0
	for _, fn := range all {
		if !covered[fn] {
			problems = append(problems, fmt.Sprintf("%s:%d: %s is run by no make test suite", fn.File, fn.Line, fn.Name))
			orphans++
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, p)
		}
		fmt.Fprintf(os.Stderr, "testcheck: %d of %d test functions run by no suite; add them to a suite in %s (or fix its -run/-skip/tags)\n", orphans, len(all), *suitesFile)
		os.Exit(1)
	}
	fmt.Printf("testcheck: all %d Test/Fuzz/Example functions are run by the %d suites of %s\n", len(all), len(suites), *suitesFile)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "testcheck:", err)
	os.Exit(2)
}

var assign = regexp.MustCompile(`^([A-Za-z0-9_.-]+)\s*:?=\s*(.*)$`)

// ParseSuites reads the suites file: `NAME := value` lines and comments only;
// `$$` stands for `$` as in a Makefile.
func ParseSuites(r io.Reader) ([]Suite, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		m := assign.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("line %d: not a NAME := value line: %q", line, text)
		}
		v := strings.TrimSpace(m[2])
		if strings.Contains(strings.ReplaceAll(v, "$$", ""), "$") {
			return nil, fmt.Errorf("line %d: %s: no make references here, only $$ for $", line, m[1])
		}
		vars[m[1]] = strings.ReplaceAll(v, "$$", "$")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	names := strings.Fields(vars["TEST_SUITES"])
	if len(names) == 0 {
		return nil, fmt.Errorf("TEST_SUITES is empty")
	}
	var suites []Suite
	for _, n := range names {
		s := Suite{Name: n, Dir: vars["TS_"+n+"_DIR"], Tags: vars["TS_"+n+"_TAGS"],
			Pkgs: strings.Fields(vars["TS_"+n+"_PKGS"]), Run: vars["TS_"+n+"_RUN"], Skip: vars["TS_"+n+"_SKIP"]}
		if s.Dir == "" || len(s.Pkgs) == 0 {
			return nil, fmt.Errorf("suite %s needs TS_%s_DIR and TS_%s_PKGS", n, n, n)
		}
		for _, re := range []string{s.Run, s.Skip} {
			for _, e := range splitRegexp(re) {
				if _, err := regexp.Compile(e); err != nil {
					return nil, fmt.Errorf("suite %s: %w", n, err)
				}
			}
		}
		suites = append(suites, s)
	}
	return suites, nil
}

// Runs tells whether `go test -run s.Run -skip s.Skip` runs the top-level
// function name (as the testing package matches: the patterns split at
// slashes, the first element for the top level; a -skip with more elements
// skips only subtests).
func (s Suite) Runs(name string) bool {
	if s.Run != "" && !regexp.MustCompile(splitRegexp(s.Run)[0]).MatchString(name) {
		return false
	}
	if skip := splitRegexp(s.Skip); s.Skip != "" && len(skip) == 1 && regexp.MustCompile(skip[0]).MatchString(name) {
		return false
	}
	return true
}

// splitRegexp splits a -run pattern at the slashes outside brackets and
// parentheses, as the testing package does.
func splitRegexp(s string) []string {
	var out []string
	cs, cp := 0, 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '[':
			cs++
		case ']':
			if cs--; cs < 0 {
				cs = 0
			}
		case '(':
			if cs == 0 {
				cp++
			}
		case ')':
			if cs == 0 {
				cp--
			}
		case '\\':
			i++
		case '/':
			if cs == 0 && cp == 0 {
				out = append(out, s[:i])
				s, i = s[i+1:], 0
				continue
			}
		}
		i++
	}
	return append(out, s)
}

type listedPkg struct {
	Dir, ImportPath           string
	TestGoFiles, XTestGoFiles []string
	Error                     *struct{ Err string }
}

// suiteFuncs calls fn for every function the suite's test binaries declare,
// with the package's directory relative to the suite's module directory.
func suiteFuncs(s Suite, fn func(pkgDir string, f Func)) error {
	args := []string{"-C", s.Dir, "list", "-e", "-json=Dir,ImportPath,TestGoFiles,XTestGoFiles,Error"}
	if s.Tags != "" {
		args = append(args, "-tags", s.Tags)
	}
	cmd := exec.Command(goCmd(), append(args, s.Pkgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	root, _ := os.Getwd()
	absDir, _ := filepath.Abs(s.Dir)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPkg
		if err := dec.Decode(&p); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if p.Error != nil {
			return fmt.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		rel, _ := filepath.Rel(absDir, p.Dir)
		for _, name := range append(p.TestGoFiles, p.XTestGoFiles...) {
			file, _ := filepath.Rel(root, filepath.Join(p.Dir, name))
			funcs, err := FileFuncs(file)
			if err != nil {
				return err
			}
			for _, f := range funcs {
				fn("./"+filepath.ToSlash(rel), f)
			}
		}
	}
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// AllFuncs is every test function in every _test.go file under root, whatever
// its build tags and module.
func AllFuncs(root string) ([]Func, error) {
	var all []Func
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "vendor" || name == "node_modules" || path == filepath.Join(root, "bin")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		funcs, err := FileFuncs(path)
		all = append(all, funcs...)
		return err
	})
	sort.Slice(all, func(i, j int) bool {
		if all[i].File != all[j].File {
			return all[i].File < all[j].File
		}
		return all[i].Line < all[j].Line
	})
	return all, err
}

// FileFuncs is the functions `go test` runs from one file: TestXxx (not
// TestMain(*testing.M)), FuzzXxx, and ExampleXxx with an output comment.
func FileFuncs(path string) ([]Func, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	path = filepath.ToSlash(filepath.Clean(path))
	var out []Func
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv != nil {
			continue
		}
		name := fd.Name.Name
		if (isTest(name, "Test") && !(name == "TestMain" && takesM(fd))) || isTest(name, "Fuzz") {
			out = append(out, Func{File: path, Line: fset.Position(fd.Pos()).Line, Name: name})
		}
	}
	for _, e := range doc.Examples(f) {
		if e.Output == "" && !e.EmptyOutput {
			continue // compiled, never run
		}
		out = append(out, Func{File: path, Line: fset.Position(e.Code.Pos()).Line, Name: "Example" + e.Name})
	}
	return out, nil
}

// isTest is cmd/go's rule: the prefix, then nothing or not a lower-case letter.
func isTest(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	if len(name) == len(prefix) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(name[len(prefix):])
	return !unicode.IsLower(r)
}

func takesM(fd *ast.FuncDecl) bool {
	p := fd.Type.Params.List
	if len(p) != 1 {
		return false
	}
	star, ok := p[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "M"
}

func printFuzz(w io.Writer, suites []Suite) error {
	seen := map[string]bool{}
	for _, s := range suites {
		tags := s.Tags
		if tags == "" {
			tags = "-"
		}
		err := suiteFuncs(s, func(pkgDir string, f Func) {
			line := fmt.Sprintf("%s %s %s %s", s.Dir, tags, pkgDir, f.Name)
			if isTest(f.Name, "Fuzz") && s.Runs(f.Name) && !seen[line] {
				seen[line] = true
				fmt.Fprintln(w, line)
			}
		})
		if err != nil {
			return fmt.Errorf("suite %s: %w", s.Name, err)
		}
	}
	return nil
}
