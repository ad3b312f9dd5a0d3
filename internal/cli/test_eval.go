package cli

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// testRun is the outcome of one test: the input check read, or the errors
// that kept it from running.
type testRun struct {
	test     *loadedTest
	in       *checkInput
	errs     inputErrors
	warnings []string
}

// runTestFile loads the test's policies and resources as `loopguard check`
// does (loadCheckInput), judges them with the same rules (evaluateInput:
// rules.Audit over one snapshot per namespace), and compares each
// expectation with the findings about its resource.
func runTestFile(t *loadedTest) *testRun {
	r := &testRun{test: t}
	o := &checkOptions{files: t.resources, policies: t.policies, namespace: t.spec.Namespace, namespaceLabels: t.labels}
	in, err := loadCheckInput(o, strings.NewReader(""))
	if err != nil {
		r.errs = asInputErrors(err, t.doc)
		return r
	}
	r.in = in
	r.warnings = in.warnings
	byObject := map[*judgedObject][]checkResult{}
	for _, res := range evaluateInput(in) {
		byObject[res.object] = append(byObject[res.object], res)
	}
	for _, c := range t.cases {
		judgeCase(c, in, byObject)
	}
	return r
}

// asInputErrors turns check's loading errors into errors with a file.
func asInputErrors(err error, d *document) inputErrors {
	var ies inputErrors
	if errors.As(err, &ies) {
		return ies
	}
	var ie *inputError
	if errors.As(err, &ie) {
		return inputErrors{ie}
	}
	return inputErrors{{file: d.file, line: d.line, msg: err.Error()}}
}

// judgeCase finds the case's resource and policy in the input, keeps the
// findings that count and compares their strictest action with the
// expectation.
func judgeCase(c *testCase, in *checkInput, byObject map[*judgedObject][]checkResult) {
	c.result = "error"
	if c.policy != nil && !policyDefined(*c.policy, in) {
		c.err = fmt.Sprintf("policy %s is not among the test's policies and resources", c.policy)
		return
	}
	var matches []*judgedObject
	for _, o := range in.objects {
		if o.doc.kind != c.kind.GVK.Kind {
			continue
		}
		m, err := meta.Accessor(o.obj)
		if err != nil || m.GetName() != c.name {
			continue
		}
		if c.exp.Namespace != "" && o.namespace != c.exp.Namespace {
			continue
		}
		matches = append(matches, o)
	}
	switch {
	case len(matches) == 0:
		where := ""
		if c.exp.Namespace != "" {
			where = " in namespace " + c.exp.Namespace
		}
		c.err = fmt.Sprintf("%s/%s%s is not among the test's resources (%s)", c.kind.GVK.Kind, c.name, where, plural(len(in.objects), "judged object"))
		return
	case len(matches) > 1:
		var nss, where []string
		for _, m := range matches {
			if !contains(nss, m.namespace) {
				nss = append(nss, m.namespace)
			}
			where = append(where, fmt.Sprintf("%s:%d", m.doc.file, m.doc.line))
		}
		if len(nss) > 1 {
			c.err = fmt.Sprintf("%s/%s is in several namespaces (%s): set namespace", c.kind.GVK.Kind, c.name, strings.Join(nss, ", "))
		} else {
			c.err = fmt.Sprintf("%s %s/%s is defined %d times in the test's resources (%s)", c.kind.GVK.Kind, nss[0], c.name, len(matches), strings.Join(where, ", "))
		}
		return
	}
	c.object = matches[0]
	var action v1alpha1.EnforcementAction
	for _, res := range byObject[c.object] {
		if c.rule != "" && res.finding.Reason != c.rule {
			continue
		}
		if c.policy != nil && !namesPolicy(res.finding, *c.policy) {
			continue
		}
		c.findings = append(c.findings, res)
		if action == "" {
			action = res.finding.Action
		} else {
			action = rules.Stricter(action, res.finding.Action)
		}
	}
	c.actual = expectAllow
	if action != "" {
		c.actual = strings.ToLower(string(action))
	}
	c.result = "pass"
	if c.actual != c.expect {
		c.result = "fail"
	}
}

func namesPolicy(f rules.Finding, p policyFilter) bool {
	for _, ref := range f.Policies {
		if p.matches(ref) {
			return true
		}
	}
	return false
}

func policyDefined(p policyFilter, in *checkInput) bool {
	for _, c := range in.clusterPolicies {
		if p.matches(c.Ref) {
			return true
		}
	}
	for _, ps := range in.nsPolicies {
		for _, c := range ps {
			if p.matches(c.Ref) {
				return true
			}
		}
	}
	return false
}
