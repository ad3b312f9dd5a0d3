package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

const ttd = "testdata/test/"

// testCases run `loopguard test`; their transcripts are golden in
// testdata/test/golden. Between them: every expectation met, every kind
// of mismatch, and every mistake in a test file.
var testCases = []checkCase{
	{"pass", []string{ttd + "suite/pass"}, "", ExitOK},
	{"fail", []string{ttd + "suite/fail/loopguard-test.yaml"}, "", ExitViolations},
	{"tree", []string{ttd + "suite/..."}, "", ExitViolations},
	{"bad", []string{ttd + "bad"}, "", ExitError},
	{"no-tests", []string{ttd + "platform"}, "", ExitError},
	{"missing-path", []string{ttd + "nowhere"}, "", ExitError},
	{"bad-output", []string{ttd + "suite/pass", "-o", "xml"}, "", ExitError},
}

// testFormatted are the cases whose JSON output is golden too.
var testFormatted = map[string]bool{"pass": true, "fail": true, "bad": true}

func TestTestCommand(t *testing.T) {
	for _, tc := range testCases {
		formats := []string{outputText}
		if testFormatted[tc.name] {
			formats = append(formats, outputJSON)
		}
		for _, format := range formats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				args := append([]string{"test"}, tc.args...)
				if format != outputText {
					args = append(args, "-o", format)
				}
				stdout, stderr, code := run(t, "", args...)
				if code != tc.code {
					t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
				}
				if format == outputJSON && !json.Valid([]byte(stdout)) {
					t.Errorf("-o json printed invalid JSON:\n%s", stdout)
				}
				golden(t, "test/golden/"+tc.name+"."+format+".golden", transcript(args, "", stdout, stderr, code))
			})
		}
	}
}

// TestTestSummaryMatchesExit checks the JSON summary agrees with the exit
// status and counts every case once.
func TestTestSummaryMatchesExit(t *testing.T) {
	for _, tc := range []struct {
		path   string
		code   int
		result string
		pass   int
		fail   int
	}{
		{ttd + "suite/pass", ExitOK, "pass", 8, 0},
		{ttd + "suite/fail", ExitViolations, "fail", 1, 4},
		{ttd + "suite/...", ExitViolations, "fail", 9, 4},
	} {
		stdout, stderr, code := run(t, "", "test", tc.path, "-o", "json")
		if code != tc.code {
			t.Fatalf("%s: exit %d, want %d\n%s", tc.path, code, tc.code, stderr)
		}
		var rep testReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		s := rep.Summary
		if s.Result != tc.result || s.Passed != tc.pass || s.Failed != tc.fail || s.Errors != 0 {
			t.Errorf("%s: summary %+v, want %s with %d passed, %d failed", tc.path, s, tc.result, tc.pass, tc.fail)
		}
	}
}

// TestTestHelp checks the command's help, as the binary and as the
// kubectl plugin shows it.
func TestTestHelp(t *testing.T) {
	stdout, _, code := run(t, "", "test", "--help")
	if code != ExitOK || !strings.Contains(stdout, "loopguard test ./policies/...") || !strings.Contains(stdout, testAPIVersion) {
		t.Errorf("test --help: exit %d:\n%s", code, stdout)
	}
	var out bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}
	Execute(context.Background(), NewRootCommand("kubectl-loopguard", streams), []string{"test", "--help"}, &out)
	if !strings.Contains(out.String(), "kubectl loopguard test ./policies/...") {
		t.Errorf("plugin help does not say kubectl loopguard test:\n%s", out.String())
	}
}
