package openreport

import (
	"cmp"
	"encoding/json"
	"slices"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/internal/rules"
)

// Source names loopguard in every result and report.
const Source = "loopguard"

// Category groups loopguard's results in Policy Reporter.
const Category = "loopback"

// MaxResults bounds the results of one Report, so that a namespace of
// thousands of protected pods cannot grow it past what etcd stores (a
// result is a few hundred bytes; etcd refuses objects over 1.5 MB). The
// summary still counts every result; the ones kept are the errors, fails
// and warns first.
const MaxResults = 1000

// PolicyName is how a result names its policy: namespace/name for a
// LoopbackService, the name for a ClusterLoopbackService.
func PolicyName(ref rules.PolicyRef) string {
	if ref.Namespace == "" {
		return ref.Name
	}
	return ref.Namespace + "/" + ref.Name
}

// NewResult is one result of a policy's rule on one object.
func NewResult(c Classification, policy rules.PolicyRef, subject corev1.ObjectReference, message string, properties map[string]string) openreportsv1alpha1.ReportResult {
	props := map[string]string{"policyKind": policy.Kind}
	for k, v := range properties {
		if v != "" {
			props[k] = v
		}
	}
	return openreportsv1alpha1.ReportResult{
		Source: Source, Policy: PolicyName(policy), Rule: c.Rule, Category: Category,
		Result: c.Result, Severity: c.Severity,
		Subjects: []corev1.ObjectReference{subject}, Description: message, Properties: props,
	}
}

// Content is what a Report holds.
type Content struct {
	Results []openreportsv1alpha1.ReportResult
	Summary openreportsv1alpha1.ReportSummary
	// Omitted counts the results past MaxResults, counted in Summary but
	// not listed.
	Omitted int
}

// resultOrder puts what needs attention first.
var resultOrder = map[openreportsv1alpha1.Result]int{ResultError: 0, ResultFail: 1, ResultWarn: 2, ResultPass: 3}

// Build sorts results in a stable order (errors, fails, warns, passes,
// then by policy, rule, object and message, so that the same findings
// always make the same Report and an unchanged namespace writes nothing),
// drops exact duplicates, counts them and keeps at most max.
func Build(results []openreportsv1alpha1.ReportResult, max int) Content {
	sorted := slices.Clone(results)
	slices.SortStableFunc(sorted, compareResults)
	sorted = slices.CompactFunc(sorted, func(a, b openreportsv1alpha1.ReportResult) bool { return compareResults(a, b) == 0 })
	var c Content
	for _, r := range sorted {
		switch r.Result {
		case ResultPass:
			c.Summary.Pass++
		case ResultFail:
			c.Summary.Fail++
		case ResultWarn:
			c.Summary.Warn++
		case ResultError:
			c.Summary.Error++
		}
	}
	if len(sorted) > max {
		c.Omitted = len(sorted) - max
		sorted = sorted[:max]
	}
	c.Results = sorted
	return c
}

func compareResults(a, b openreportsv1alpha1.ReportResult) int {
	return cmp.Or(
		cmp.Compare(resultOrder[a.Result], resultOrder[b.Result]),
		cmp.Compare(a.Policy, b.Policy),
		cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(subjectKey(a), subjectKey(b)),
		cmp.Compare(a.Description, b.Description),
		cmp.Compare(a.Properties["field"], b.Properties["field"]),
	)
}

func subjectKey(r openreportsv1alpha1.ReportResult) string {
	if len(r.Subjects) == 0 {
		return ""
	}
	s := r.Subjects[0]
	return s.Namespace + "/" + s.Kind + "/" + s.Name
}

// KeepTimestamps dates each result of next: a result that prev already
// held (the same in all but its timestamp) keeps prev's timestamp, a new
// one (or one prev held undated) gets now. So a result says since when it holds, and an unchanged
// Report stays equal to the one stored (no write).
func KeepTimestamps(prev, next []openreportsv1alpha1.ReportResult, now metav1.Timestamp) {
	seen := make(map[string]metav1.Timestamp, len(prev))
	for _, r := range prev {
		seen[resultKey(r)] = r.Timestamp
	}
	for i := range next {
		if ts, ok := seen[resultKey(next[i])]; ok && ts != (metav1.Timestamp{}) {
			next[i].Timestamp = ts
		} else {
			next[i].Timestamp = now
		}
	}
}

// resultKey is a result but for its timestamp.
func resultKey(r openreportsv1alpha1.ReportResult) string {
	r.Timestamp = metav1.Timestamp{}
	b, _ := json.Marshal(r) // a struct of strings, maps and slices: cannot fail
	return string(b)
}
