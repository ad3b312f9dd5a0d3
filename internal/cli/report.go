package cli

import (
	"encoding/json"
	"io"

	"github.com/loopguard/loopguard/internal/rules"
)

// The JSON (and, for audit, YAML) output schema. It is documented in
// docs/cli.md; fields are only ever added.

// checkSchemaVersion and auditSchemaVersion name the output schemas.
const (
	checkSchemaVersion = "loopguard.io/check/v1"
	auditSchemaVersion = "loopguard.io/audit/v1"
)

// reportFinding is one finding.
type reportFinding struct {
	// File and Line locate the offending field (check only).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Object is the object that exposes the port.
	Object reportObject `json:"object"`
	// Field is the path of the offending field in the object.
	Field string `json:"field"`
	// Reason is ContainerPort, HostPort, HostNetwork, ServiceTarget or
	// SelectedByService.
	Reason    string `json:"reason"`
	Container string `json:"container,omitempty"`
	// Port and Protocol are the protected port exposed; absent for
	// HostNetwork, which exposes every port of the policies.
	Port     int32  `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// Action is the strictest enforcementAction of the policies: Deny,
	// Warn or Audit.
	Action string `json:"action"`
	// Policies are every policy that protects the port.
	Policies []reportPolicy `json:"policies"`
	// Related names the other object involved ("service/admin" for
	// SelectedByService).
	Related string `json:"related,omitempty"`
	// Message says what is wrong, which policies forbid it and the fix,
	// word for word what the webhook answers.
	Message string `json:"message"`
}

type reportObject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

type reportPolicy struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func newReportFinding(f rules.Finding) reportFinding {
	rf := reportFinding{
		Object:    reportObject{Kind: f.Object.Kind, Namespace: f.Object.Namespace, Name: f.Object.Name},
		Field:     f.Field,
		Reason:    f.Reason,
		Container: f.Container,
		Port:      f.Port,
		Protocol:  string(f.Protocol),
		Action:    string(f.Action),
		Policies:  reportPolicies(f.Policies),
		Related:   f.Related,
		Message:   f.Message(),
	}
	return rf
}

func reportPolicies(refs []rules.PolicyRef) []reportPolicy {
	out := make([]reportPolicy, len(refs))
	for i, r := range refs {
		out[i] = reportPolicy{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
	}
	return out
}

// checkReport is check's JSON output.
type checkReport struct {
	SchemaVersion string          `json:"schemaVersion"`
	Findings      []reportFinding `json:"findings"`
	// Warnings are also printed on stderr: objects of a version loopguard
	// does not judge, no policy at all.
	Warnings []string     `json:"warnings"`
	Summary  checkSummary `json:"summary"`
}

type checkSummary struct {
	// Files read, objects judged (of the kinds the rules judge), objects
	// skipped (other kinds), policies found.
	Files    int `json:"files"`
	Objects  int `json:"objects"`
	Skipped  int `json:"skipped"`
	Policies int `json:"policies"`
	// Findings by action.
	Findings int `json:"findings"`
	Deny     int `json:"deny"`
	Warn     int `json:"warn"`
	Audit    int `json:"audit"`
	// Result is "fail" when a finding is Deny (exit status 1), else "pass".
	Result string `json:"result"`
}

func writeCheckJSON(w io.Writer, in *checkInput, results []checkResult) error {
	rep := checkReport{SchemaVersion: checkSchemaVersion, Findings: []reportFinding{}, Warnings: append([]string{}, in.warnings...)}
	for _, r := range results {
		rf := newReportFinding(r.finding)
		rf.File, rf.Line = r.file, r.line
		rf.Object.Namespace = r.object.namespace
		rep.Findings = append(rep.Findings, rf)
	}
	c := countActions(resultActions(results))
	rep.Summary = checkSummary{
		Files: in.files, Objects: len(in.objects), Skipped: in.skipped, Policies: in.policies,
		Findings: len(results), Deny: c.deny, Warn: c.warn, Audit: c.audit, Result: "pass",
	}
	if c.deny > 0 {
		rep.Summary.Result = "fail"
	}
	return writeJSON(w, rep)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
