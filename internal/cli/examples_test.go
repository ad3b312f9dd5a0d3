package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleRuns are the commands docs/cli.md shows on examples/, run from the
// repository root as a newcomer would.
var exampleRuns = []struct {
	golden string
	args   []string
	code   int
	// withStderr: the docs show stderr, then stdout.
	withStderr bool
}{
	{"check", []string{"check", "-f", "examples/"}, ExitViolations, false},
	{"check-app", []string{"check", "-f", "examples/app/", "--policies", "examples/policies/"}, ExitOK, false},
	{"test", []string{"test", "examples/"}, ExitOK, false},
	// A failing test and mistakes in a test file, from the tests' own data.
	{"test-fail", []string{"test", "internal/cli/testdata/test/suite/fail/loopguard-test.yaml"}, ExitViolations, false},
	{"test-mistakes", []string{"test", "internal/cli/testdata/test/bad/loopguard-test.yaml"}, ExitError, true},
}

// TestExamples runs check and test on examples/ and compares their output
// with the goldens in testdata/examples and with docs/cli.md, where each
// command is shown after "$ loopguard ARGS" with its output.
func TestExamples(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range exampleRuns {
		var stdout, stderr string
		var code int
		t.Run(ex.golden+"/run", func(t *testing.T) {
			t.Chdir(root)
			stdout, stderr, code = run(t, "", ex.args...)
		})
		t.Run(ex.golden, func(t *testing.T) {
			if code != ex.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ex.code, stdout, stderr)
			}
			golden(t, "examples/"+ex.golden+".golden", transcript(ex.args, "", stdout, stderr, code))
			shown, ok := consoleOutput(string(docs), "$ loopguard "+strings.Join(ex.args, " "))
			if !ok {
				t.Fatalf("docs/cli.md shows no \"$ loopguard %s\" in a console block", strings.Join(ex.args, " "))
			}
			want := stdout
			if ex.withStderr {
				want = stderr + stdout
			}
			if shown != want {
				t.Errorf("docs/cli.md shows another output for loopguard %s:\n--- docs\n%s\n--- real\n%s", strings.Join(ex.args, " "), shown, want)
			}
		})
	}
}

// consoleOutput returns the lines that follow the line cmd in a markdown
// document, up to the next command ("$ ...") or the end of the block.
func consoleOutput(doc, cmd string) (string, bool) {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if l != cmd {
			continue
		}
		var b strings.Builder
		for _, o := range lines[i+1:] {
			if strings.HasPrefix(o, "$ ") || strings.HasPrefix(o, "```") {
				break
			}
			b.WriteString(o + "\n")
		}
		return b.String(), true
	}
	return "", false
}
