package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRuns(t *testing.T) {
	cases := []struct {
		run, skip, name string
		want            bool
	}{
		{"", "", "TestA", true},
		{"TestServerDryRun", "", "TestServerDryRunX", true}, // unanchored, as go test
		{"^TestServerDryRun$", "", "TestServerDryRunX", false},
		{"TestDefaults|TestLint", "", "TestAgentOverrides", false},
		{"", "^TestServerDryRun$", "TestServerDryRun", false},
		{"", "^TestServerDryRun$", "TestAgentOverrides", true},
		{"TestA/sub", "", "TestA", true}, // the top level runs, for its subtest
		{"", "TestA/sub", "TestA", true}, // a -skip with a slash skips subtests only
		{"Test[/]A", "", "Test/A", true}, // a slash inside brackets does not split
		{"(A/B)", "", "A/B", true},       // nor inside parentheses
		{"FuzzX", "", "FuzzX", true},     // fuzz seeds run as tests under -run
		{"", "", "ExampleReview", true},
	}
	for _, c := range cases {
		if got := (Suite{Run: c.run, Skip: c.skip}).Runs(c.name); got != c.want {
			t.Errorf("-run %q -skip %q, %s: runs=%v, want %v", c.run, c.skip, c.name, got, c.want)
		}
	}
}

func TestSplitRegexp(t *testing.T) {
	for in, want := range map[string][]string{
		"":           {""},
		"A/B":        {"A", "B"},
		"A|B/C":      {"A|B", "C"},
		`A\/B`:       {`A\/B`},
		"[/]x/(a/b)": {"[/]x", "(a/b)"},
	} {
		if got := splitRegexp(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitRegexp(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSuites(t *testing.T) {
	s, err := ParseSuites(strings.NewReader(`# comment
TEST_SUITES := a b
TS_a_DIR := .
TS_a_PKGS := ./x/... ./y/
TS_a_SKIP := ^TestZ$$
TS_b_DIR := hack/m
TS_b_TAGS := e2e
TS_b_PKGS := ./...
TS_b_RUN := ^TestOnly$$
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Suite{
		{Name: "a", Dir: ".", Pkgs: []string{"./x/...", "./y/"}, Skip: "^TestZ$"},
		{Name: "b", Dir: "hack/m", Tags: "e2e", Pkgs: []string{"./..."}, Run: "^TestOnly$"},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	for _, bad := range []string{
		"TEST_SUITES := a\nTS_a_DIR := .\n",                                // no packages
		"TEST_SUITES := a\nTS_a_DIR := $(X)\nTS_a_PKGS := ./...\n",         // a make reference
		"TEST_SUITES := a\nifdef X\n",                                      // not an assignment
		"TEST_SUITES := a\nTS_a_DIR := .\nTS_a_PKGS := .\nTS_a_RUN := (\n", // a bad regexp
	} {
		if _, err := ParseSuites(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseSuites(%q): no error", bad)
		}
	}
}

func TestFileFuncs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x_test.go")
	src := `package x

import "testing"

func TestMain(m *testing.M) {}
func TestA(t *testing.T)     {}
func Test(t *testing.T)      {}
func Testing(t *testing.T)   {}
func FuzzB(f *testing.F)     {}
func helper(t *testing.T)    {}
func BenchmarkC(b *testing.B) {}

type s struct{}

func (s) TestMethod(t *testing.T) {}

func ExampleRun() {
	// Output: x
}

func ExampleNoOutput() {}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	funcs, err := FileFuncs(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range funcs {
		names = append(names, f.Name)
	}
	if want := []string{"TestA", "Test", "FuzzB", "ExampleRun"}; !reflect.DeepEqual(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
}
