package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
)

// testSchemaVersion names test's JSON output schema, documented in
// docs/cli.md; fields are only ever added.
const testSchemaVersion = "loopguard.io/test/v1"

// testReport is test's JSON output.
type testReport struct {
	SchemaVersion string `json:"schemaVersion"`
	// Tests are every test that was read, in the order of their files.
	Tests []testReportTest `json:"tests"`
	// Errors are those of test files that could not be read at all.
	Errors  []testReportError `json:"errors"`
	Summary testSummary       `json:"summary"`
}

type testReportTest struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Name string `json:"name"`
	// Policies and Objects count what was read; 0 when the test could not
	// run.
	Policies int              `json:"policies"`
	Objects  int              `json:"objects"`
	Cases    []testReportCase `json:"cases"`
	// Errors kept the test from running: its own fields, or its input.
	Errors   []testReportError `json:"errors"`
	Warnings []string          `json:"warnings"`
}

type testReportCase struct {
	// Line is the line of the expectation in the test file.
	Line     int          `json:"line"`
	Resource reportObject `json:"resource"`
	// Policy and Rule are the expectation's, when it names them.
	Policy   string `json:"policy,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Expected string `json:"expected"`
	// Actual is the strictest action of the findings that count, or
	// allow; absent on error.
	Actual string `json:"actual,omitempty"`
	// Result is pass, fail or error.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	// Findings are the findings that count, as check reports them.
	Findings []reportFinding `json:"findings"`
}

type testReportError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

type testSummary struct {
	Files  int `json:"files"`
	Tests  int `json:"tests"`
	Cases  int `json:"cases"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	// Errors counts the cases in error and the errors that kept a test
	// file or a test from running.
	Errors int `json:"errors"`
	// Result is "error" (exit status 2), "fail" (1) or "pass" (0).
	Result string `json:"result"`
}

func newTestReport(runs []*testRun, errs inputErrors) *testReport {
	rep := &testReport{SchemaVersion: testSchemaVersion, Tests: []testReportTest{}, Errors: reportErrors(errs)}
	files := map[string]bool{}
	for _, e := range errs {
		files[e.file] = true
	}
	s := &rep.Summary
	s.Errors = len(errs)
	for _, r := range runs {
		t := r.test
		files[t.doc.file] = true
		rt := testReportTest{File: t.doc.file, Line: t.doc.line, Name: t.name, Cases: []testReportCase{},
			Errors: reportErrors(r.errs), Warnings: append([]string{}, r.warnings...)}
		s.Errors += len(r.errs)
		if r.in != nil {
			rt.Policies, rt.Objects = r.in.policies, len(r.in.objects)
			for _, c := range t.cases {
				rt.Cases = append(rt.Cases, newTestReportCase(c))
				s.Cases++
				switch c.result {
				case "pass":
					s.Passed++
				case "fail":
					s.Failed++
				default:
					s.Errors++
				}
			}
		}
		rep.Tests = append(rep.Tests, rt)
	}
	s.Files, s.Tests = len(files), len(runs)
	switch {
	case s.Errors > 0:
		s.Result = "error"
	case s.Failed > 0:
		s.Result = "fail"
	default:
		s.Result = "pass"
	}
	return rep
}

func newTestReportCase(c *testCase) testReportCase {
	rc := testReportCase{Line: c.line, Resource: reportObject{Kind: c.kind.GVK.Kind, Namespace: c.exp.Namespace, Name: c.name},
		Rule: c.rule, Expected: c.expect, Actual: c.actual, Result: c.result, Error: c.err,
		Findings: []reportFinding{}}
	if c.policy != nil {
		rc.Policy = c.policy.String()
	}
	if c.object != nil {
		rc.Resource.Namespace = c.object.namespace
	}
	for _, f := range c.findings {
		rf := newReportFinding(f.finding)
		rf.File, rf.Line = f.file, f.line
		rf.Object.Namespace = f.object.namespace
		rc.Findings = append(rc.Findings, rf)
	}
	return rc
}

func reportErrors(errs inputErrors) []testReportError {
	out := []testReportError{}
	for _, e := range errs {
		out = append(out, testReportError{File: e.file, Line: e.line, Message: e.msg})
	}
	return out
}

// writeTestText prints, for each test that ran, a header, a table of its
// cases and what went wrong with each failed one, then a summary line.
func writeTestText(w io.Writer, rep *testReport) error {
	shown := 0
	for _, t := range rep.Tests {
		if len(t.Errors) > 0 {
			continue // on stderr
		}
		if shown > 0 {
			fmt.Fprintln(w)
		}
		shown++
		fmt.Fprintf(w, "Test %s (%s:%d): %s against %s\n", t.Name, t.File, t.Line, plural(t.Objects, "object"), plural(t.Policies, "policy"))
		tw := printers.GetNewTabWriter(w)
		fmt.Fprintln(tw, "RESOURCE\tPOLICY\tRULE\tEXPECTED\tACTUAL\tRESULT")
		for _, c := range t.Cases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", objectLabel(c.Resource.Kind, c.Resource.Namespace, c.Resource.Name),
				orDash(casePolicies(c)), orDash(caseRules(c)), c.Expected, orDash(c.Actual), c.Result)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, c := range t.Cases {
			writeCaseDetail(w, t.File, c)
		}
	}
	s := rep.Summary
	verdict := map[string]string{"pass": "passed", "fail": "failed", "error": "failed"}[s.Result]
	if shown > 0 {
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "%d passed, %d failed, %s: %s in %s from %s; test %s.\n",
		s.Passed, s.Failed, plural(s.Errors, "error"), plural(s.Cases, "case"), plural(s.Tests, "test"), plural(s.Files, "file"), verdict)
	return err
}

// writeCaseDetail says why a case failed: the findings that counted, or
// that there were none; or the case's error.
func writeCaseDetail(w io.Writer, file string, c testReportCase) {
	label := objectLabel(c.Resource.Kind, c.Resource.Namespace, c.Resource.Name)
	switch c.Result {
	case "error":
		fmt.Fprintf(w, "ERROR %s:%d: %s\n", file, c.Line, c.Error)
	case "fail":
		fmt.Fprintf(w, "FAIL %s:%d: %s: expected %s, got %s", file, c.Line, label, c.Expected, c.Actual)
		if len(c.Findings) == 0 {
			fmt.Fprintf(w, ": no finding%s\n", narrowedBy(c))
			return
		}
		fmt.Fprintln(w)
		for _, f := range c.Findings {
			fmt.Fprintf(w, "  %s:%d: [%s] %s %s: %s\n", f.File, f.Line, f.Action, f.Reason, shortPolicies(f.Policies), f.Message)
		}
	}
}

func narrowedBy(c testReportCase) string {
	var parts []string
	if c.Rule != "" {
		parts = append(parts, "rule "+c.Rule)
	}
	if c.Policy != "" {
		parts = append(parts, "policy "+c.Policy)
	}
	if len(parts) == 0 {
		return ""
	}
	return " of " + strings.Join(parts, " and ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// casePolicies are the policies the table shows for a case: its own, else
// those of the findings that decided, else none.
func casePolicies(c testReportCase) string {
	if c.Policy != "" {
		return c.Policy
	}
	var out []string
	for _, f := range decidingFindings(c) {
		for _, p := range f.Policies {
			if s := shortPolicy(p); !contains(out, s) {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// caseRules are the rules the table shows: the case's own, else the
// reasons of the findings that decided.
func caseRules(c testReportCase) string {
	if c.Rule != "" {
		return c.Rule
	}
	var out []string
	for _, f := range decidingFindings(c) {
		if !contains(out, f.Reason) {
			out = append(out, f.Reason)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// decidingFindings are the counted findings whose action is the actual
// result.
func decidingFindings(c testReportCase) []reportFinding {
	var out []reportFinding
	for _, f := range c.Findings {
		if strings.EqualFold(f.Action, c.Actual) {
			out = append(out, f)
		}
	}
	return out
}
