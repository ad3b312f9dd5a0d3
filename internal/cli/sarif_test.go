package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/loopguard/loopguard/internal/rules"
)

// sarifOut is the part of a SARIF log these tests read.
type sarifOut struct {
	Runs []struct {
		Tool struct {
			Driver struct {
				Rules []struct {
					ID         string         `json:"id"`
					Properties map[string]any `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Invocations []struct {
			ExecutionSuccessful *bool `json:"executionSuccessful"`
			Notifications       []struct {
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex *int   `json:"ruleIndex"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
				} `json:"physicalLocation"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

func decodeSARIF(t *testing.T, stdout string) sarifOut {
	t.Helper()
	var log sarifOut
	if err := json.Unmarshal([]byte(stdout), &log); err != nil {
		t.Fatalf("invalid SARIF JSON: %v\n%s", err, stdout)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(log.Runs))
	}
	return log
}

// sarifCases are check runs whose SARIF output the tests below validate:
// every reason, every action, standard input, and inputs check refuses.
var sarifCases = []struct {
	name  string
	args  []string
	stdin string
	code  int
}{
	{"every-reason", []string{"-f", td + "containers.yaml", "-f", td + "hostport.yaml", "-f", td + "hostnetwork.yaml",
		"-f", td + "services.yaml", "-f", td + "race.yaml", "-f", td + "endpoints.yaml", "-f", td + "actions.yaml",
		"--policies", policies}, "", ExitViolations},
	{"clean", []string{"-f", td + "clean.yaml", "--policies", policies}, "", ExitOK},
	{"stdin", []string{"-f", "-", "--policies", policies}, td + "kustomize-output.yaml", ExitViolations},
	{"missing-file", []string{"-f", td + "does-not-exist.yaml", "--policies", policies}, "", ExitError},
	{"malformed", []string{"-f", td + "malformed.yaml", "--policies", policies}, "", ExitError},
	{"invalid-policy", []string{"-f", td + "invalid-policy.yaml"}, "", ExitError},
	{"empty-stdin", []string{"-f", "-", "--policies", policies}, td + "empty.yaml", ExitError},
}

func runSARIF(t *testing.T, args []string, stdinFile string) (string, string, int) {
	t.Helper()
	stdin := ""
	if stdinFile != "" {
		b, err := os.ReadFile(stdinFile)
		if err != nil {
			t.Fatal(err)
		}
		stdin = string(b)
	}
	return run(t, stdin, append([]string{"check", "-o", "sarif"}, args...)...)
}

// TestSARIFRuleIndex checks every finding reason has a rule and every
// result's ruleIndex points at the rule its ruleId names.
func TestSARIFRuleIndex(t *testing.T) {
	stdout, stderr, code := runSARIF(t, sarifCases[0].args, "")
	if code != ExitViolations {
		t.Fatalf("exit status %d, want %d\n%s", code, ExitViolations, stderr)
	}
	log := decodeSARIF(t, stdout)
	run := log.Runs[0]
	index := map[string]int{}
	for i, r := range run.Tool.Driver.Rules {
		index[r.ID] = i
	}
	seen := map[string]bool{}
	for i, res := range run.Results {
		seen[res.RuleID] = true
		want, ok := index[res.RuleID]
		if !ok {
			t.Errorf("results[%d].ruleId %q names no rule", i, res.RuleID)
			continue
		}
		if res.RuleIndex == nil || *res.RuleIndex != want {
			got := -1
			if res.RuleIndex != nil {
				got = *res.RuleIndex
			}
			t.Errorf("results[%d] (ruleId %s) has ruleIndex %d, want %d", i, res.RuleID, got, want)
		}
	}
	for _, reason := range checkReasons {
		if _, ok := index[reason]; !ok {
			t.Errorf("no SARIF rule for reason %s", reason)
		}
		if !seen[reason] {
			t.Errorf("the every-reason run has no %s result", reason)
		}
	}
}

// TestSARIFSecuritySeverity checks every rule carries the
// security-severity code scanning ranks alerts by: a number in (0, 10].
func TestSARIFSecuritySeverity(t *testing.T) {
	stdout, _, _ := runSARIF(t, sarifCases[1].args, "")
	for _, r := range decodeSARIF(t, stdout).Runs[0].Tool.Driver.Rules {
		s, ok := r.Properties["security-severity"].(string)
		if !ok {
			t.Errorf("rule %s: no properties.security-severity string", r.ID)
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 10 {
			t.Errorf("rule %s: security-severity %q is not a number in (0, 10]", r.ID, s)
		}
	}
}

// TestSARIFBadInput checks a run that cannot judge its input still writes
// a SARIF log: no results, executionSuccessful false, and the error as a
// notification, so code scanning shows why instead of rejecting an empty
// file.
func TestSARIFBadInput(t *testing.T) {
	for _, tc := range sarifCases {
		if tc.code != ExitError {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runSARIF(t, tc.args, tc.stdin)
			if code != ExitError {
				t.Fatalf("exit status %d, want %d", code, ExitError)
			}
			if stderr == "" {
				t.Error("nothing on stderr: the error must still be printed there")
			}
			log := decodeSARIF(t, stdout)
			run := log.Runs[0]
			if len(run.Results) != 0 {
				t.Errorf("%d results, want none", len(run.Results))
			}
			if len(run.Invocations) != 1 {
				t.Fatalf("%d invocations, want 1", len(run.Invocations))
			}
			inv := run.Invocations[0]
			if inv.ExecutionSuccessful == nil || *inv.ExecutionSuccessful {
				t.Error("executionSuccessful is not false")
			}
			if len(inv.Notifications) == 0 {
				t.Fatal("no toolExecutionNotifications")
			}
			for _, n := range inv.Notifications {
				if n.Level != "error" || n.Message.Text == "" {
					t.Errorf("notification %+v: want level error and a message", n)
				}
				if !strings.Contains(stderr, n.Message.Text) {
					t.Errorf("notification %q is not the error printed on stderr:\n%s", n.Message.Text, stderr)
				}
			}
		})
	}
}

// TestSARIFSuccessfulInvocation checks a run that judged its input says so.
func TestSARIFSuccessfulInvocation(t *testing.T) {
	stdout, _, _ := runSARIF(t, sarifCases[1].args, "")
	run := decodeSARIF(t, stdout).Runs[0]
	if len(run.Invocations) != 1 || run.Invocations[0].ExecutionSuccessful == nil || !*run.Invocations[0].ExecutionSuccessful {
		t.Errorf("invocations %+v: want one with executionSuccessful true", run.Invocations)
	}
}

// TestSARIFStdinURI checks results read from standard input carry the same
// relative URI whatever the working directory and the run.
func TestSARIFStdinURI(t *testing.T) {
	var first string
	pols, input := mustAbs(t, policies), mustAbs(t, td+"kustomize-output.yaml")
	for i := 0; i < 2; i++ {
		if i == 1 {
			t.Chdir(t.TempDir())
		}
		stdout, _, code := runSARIF(t, []string{"-f", "-", "--policies", pols}, input)
		if code != ExitViolations {
			t.Fatalf("exit status %d", code)
		}
		var got []string
		for _, res := range decodeSARIF(t, stdout).Runs[0].Results {
			for _, l := range res.Locations {
				got = append(got, l.PhysicalLocation.ArtifactLocation.URI)
			}
		}
		if len(got) == 0 {
			t.Fatal("no locations")
		}
		for _, u := range got {
			if u != sarifStdinURI {
				t.Errorf("stdin result URI %q, want %q", u, sarifStdinURI)
			}
		}
		joined := strings.Join(got, " ")
		if i == 0 {
			first = joined
		} else if joined != first {
			t.Errorf("URIs changed with the working directory: %s, then %s", first, joined)
		}
	}
}

// checkReasons are the reasons check can report, from the rule
// constants; a SARIF rule must exist for each.
var checkReasons = []string{
	rules.ReasonContainerPort, rules.ReasonHostPort, rules.ReasonHostNetwork,
	rules.ReasonServiceTarget, rules.ReasonSelectedByService, rules.ReasonEndpointTarget,
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSARIFValidatesAgainstSchema validates the output of every
// sarifCases run against the SARIF 2.1.0 schema in testdata/sarif (see its
// README for what it covers), formats asserted.
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	const schemaFile = "testdata/sarif/sarif-2.1.0-subset.schema.json"
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaFile, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range sarifCases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runSARIF(t, tc.args, tc.stdin)
			if code != tc.code {
				t.Fatalf("exit status %d, want %d\n%s", code, tc.code, stderr)
			}
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(stdout))
			if err != nil {
				t.Fatalf("invalid JSON: %v", err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("not valid SARIF 2.1.0: %v", err)
			}
		})
	}
}
