package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

// The test file format of `loopguard test`, documented in docs/cli.md.
const (
	testGroup      = "cli.loopguard.io"
	testAPIVersion = testGroup + "/v1alpha1"
	testKind       = "Test"
)

// testSpec is one Test document: which policies and resources to load,
// and what the rules must decide about each resource.
type testSpec struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	// Policies and Resources are files or directories (recursive),
	// relative to the test file: check's --policies and -f.
	Policies  []string `json:"policies,omitempty"`
	Resources []string `json:"resources"`
	// Namespace is for the resources without one (check's -n).
	Namespace string `json:"namespace,omitempty"`
	// NamespaceLabels are the labels of namespaces, for cluster policies
	// (check's --namespace-labels).
	NamespaceLabels map[string]map[string]string `json:"namespaceLabels,omitempty"`
	Results         []testExpectation            `json:"results"`
}

// testExpectation is one expected result.
type testExpectation struct {
	// Resource is KIND/NAME, the kind as its name or plural resource,
	// case-insensitive: Deployment/cart, pods/debug.
	Resource string `json:"resource"`
	// Namespace is needed only when the name is in several namespaces.
	Namespace string `json:"namespace,omitempty"`
	// Rule and Policy narrow the findings that count: a finding reason
	// (ContainerPort, ...) and a policy (lbs/NAME, clbs/NAME or NAME).
	Rule   string `json:"rule,omitempty"`
	Policy string `json:"policy,omitempty"`
	// Expect is allow, audit, warn or deny.
	Expect string `json:"expect"`
}

// The expected and actual results of a case: the strictest action of the
// findings that count, or allow when there are none.
const (
	expectAllow = "allow"
	expectAudit = "audit"
	expectWarn  = "warn"
	expectDeny  = "deny"
)

var expectValues = []string{expectAllow, expectAudit, expectWarn, expectDeny}

// policyFilter is the policy of an expectation; kind is empty when only
// the name was given.
type policyFilter struct {
	kind, name string
}

func (p policyFilter) matches(ref rules.PolicyRef) bool {
	return ref.Name == p.name && (p.kind == "" || p.kind == ref.Kind)
}

func (p policyFilter) String() string {
	switch p.kind {
	case rules.KindLoopbackService:
		return "lbs/" + p.name
	case rules.KindClusterLoopbackService:
		return "clbs/" + p.name
	}
	return p.name
}

// loadedTest is one Test document, read and validated.
type loadedTest struct {
	doc       *document
	name      string
	spec      testSpec
	policies  []string // resolved paths
	resources []string
	labels    []string // namespaceLabels as --namespace-labels flags
	cases     []*testCase
}

// testCase is one expectation, parsed, and then its outcome.
type testCase struct {
	line   int
	exp    testExpectation
	kind   *kinds.Kind
	name   string
	rule   string
	policy *policyFilter
	expect string

	// Set by the evaluation.
	object   *judgedObject
	findings []checkResult // those that count
	actual   string
	result   string // pass, fail or error
	err      string
}

// discoverTests finds the Test documents under paths: a file must hold
// one; a directory (with or without a trailing /...) is searched
// recursively, skipping hidden directories, for .yaml and .yml files that
// mention cli.loopguard.io. Errors name the file and line.
func discoverTests(paths []string) ([]*loadedTest, inputErrors) {
	var tests []*loadedTest
	var errs inputErrors
	for _, p := range paths {
		p = strings.TrimSuffix(p, "...")
		if p == "" {
			p = "."
		}
		if p != "." && p != "/" {
			p = strings.TrimSuffix(p, string(filepath.Separator))
		}
		info, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &inputError{file: p, msg: describeFSError(err)})
			continue
		}
		if !info.IsDir() {
			ts, es := readTestFile(p, true)
			tests, errs = append(tests, ts...), append(errs, es...)
			continue
		}
		var files []string
		werr := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return &inputError{file: path, msg: describeFSError(err)}
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if ext := strings.ToLower(filepath.Ext(path)); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, path)
			}
			return nil
		})
		if werr != nil {
			errs = append(errs, werr.(*inputError))
		}
		sort.Strings(files)
		found := false
		for _, f := range files {
			ts, es := readTestFile(f, false)
			found = found || len(ts) > 0 || len(es) > 0
			tests, errs = append(tests, ts...), append(errs, es...)
		}
		if !found && werr == nil {
			errs = append(errs, &inputError{file: p, msg: fmt.Sprintf("no test file here: no .yaml or .yml file has apiVersion %s and kind %s", testAPIVersion, testKind)})
		}
	}
	return tests, errs
}

// readTestFile reads the Test documents of a file. A file found by
// discovery that does not mention the group is not read; named, it must
// hold a test.
func readTestFile(file string, named bool) ([]*loadedTest, inputErrors) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, inputErrors{{file: file, msg: describeFSError(err)}}
	}
	if !named && !bytes.Contains(data, []byte(testGroup+"/")) {
		return nil, nil
	}
	docs, errs := parseDocuments(source{name: file, data: data})
	var tests []*loadedTest
	for _, d := range docs {
		group, version, _ := strings.Cut(d.apiVersion, "/")
		if group != testGroup {
			continue
		}
		if version != "v1alpha1" || d.kind != testKind {
			errs = append(errs, &inputError{file: file, line: d.line, msg: fmt.Sprintf(
				"%s %s is not a test this loopguard reads: use apiVersion %s and kind %s", d.apiVersion, d.kind, testAPIVersion, testKind)})
			continue
		}
		t, es := newLoadedTest(d)
		if len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		tests = append(tests, t)
	}
	if named && len(tests) == 0 && len(errs) == 0 {
		errs = append(errs, &inputError{file: file, msg: fmt.Sprintf("not a test file: no document has apiVersion %s and kind %s", testAPIVersion, testKind)})
	}
	return tests, errs
}

// newLoadedTest decodes and validates one Test document. Every error is
// at the line of its field.
func newLoadedTest(d *document) (*loadedTest, inputErrors) {
	t := &loadedTest{doc: d}
	name, _ := d.metadata()
	t.name = name
	if t.name == "" {
		t.name = filepath.Base(d.file)
	}
	what := "Test " + t.name
	decodeErrs, ok := d.decodeInto(&t.spec, true, what)
	for _, e := range decodeErrs {
		// A test file is not sent to an API server: an unknown field is
		// only unknown.
		e.msg = strings.TrimSuffix(e.msg, " (the API server rejects it)")
		// A value of the wrong type in a map is not found by its type:
		// point at the field at least.
		if e.line == d.line {
			path, _, _ := strings.Cut(strings.TrimPrefix(e.msg, what+": "), ":")
			e.line = locate(d.node, path)
		}
	}
	if !ok {
		return nil, decodeErrs
	}
	var fes field.ErrorList
	dir := filepath.Dir(d.file)
	t.policies, fes = resolveTestPaths(dir, t.spec.Policies, field.NewPath("policies"), fes)
	t.resources, fes = resolveTestPaths(dir, t.spec.Resources, field.NewPath("resources"), fes)
	if len(t.spec.Resources) == 0 {
		fes = append(fes, field.Required(field.NewPath("resources"), "the manifests to judge: files or directories, relative to the test file"))
	}
	if t.spec.Namespace == "" {
		t.spec.Namespace = "default"
	}
	nsNames := make([]string, 0, len(t.spec.NamespaceLabels))
	for ns := range t.spec.NamespaceLabels {
		nsNames = append(nsNames, ns)
	}
	sort.Strings(nsNames)
	for _, ns := range nsNames {
		l := t.spec.NamespaceLabels[ns]
		keys := make([]string, 0, len(l))
		for k := range l {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = k + "=" + l[k]
		}
		fld := field.NewPath("namespaceLabels").Key(ns)
		for _, msg := range validation.IsDNS1123Label(ns) {
			fes = append(fes, field.Invalid(fld, ns, "not a namespace name: "+msg))
		}
		fes = append(fes, metav1validation.ValidateLabels(l, fld)...)
		t.labels = append(t.labels, ns+"="+strings.Join(pairs, ","))
	}
	if len(t.spec.Results) == 0 {
		fes = append(fes, field.Required(field.NewPath("results"), "a test needs at least one expected result"))
	}
	for i, exp := range t.spec.Results {
		c, ces := newTestCase(exp, field.NewPath("results").Index(i))
		c.line = locate(d.node, fmt.Sprintf("results[%d]", i))
		fes = append(fes, ces...)
		t.cases = append(t.cases, c)
	}
	out := decodeErrs
	for _, e := range fes {
		out = append(out, &inputError{file: d.file, line: locate(d.node, e.Field), msg: what + ": " + e.Error()})
	}
	return t, out
}

// resolveTestPaths makes the paths of a test relative to its file's
// directory and checks that they exist.
func resolveTestPaths(dir string, paths []string, fld *field.Path, errs field.ErrorList) ([]string, field.ErrorList) {
	out := make([]string, 0, len(paths))
	for i, p := range paths {
		switch {
		case p == "":
			errs = append(errs, field.Required(fld.Index(i), "a file or directory"))
			continue
		case p == "-":
			errs = append(errs, field.Invalid(fld.Index(i), p, "standard input cannot be read by a test"))
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, field.Invalid(fld.Index(i), paths[i], p+": "+describeFSError(err)))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

// newTestCase parses one expectation.
func newTestCase(exp testExpectation, fld *field.Path) (*testCase, field.ErrorList) {
	c := &testCase{exp: exp}
	var errs field.ErrorList
	kind, name, ok := strings.Cut(exp.Resource, "/")
	switch {
	case exp.Resource == "":
		errs = append(errs, field.Required(fld.Child("resource"), "KIND/NAME, e.g. Deployment/cart"))
	case !ok || kind == "" || name == "" || strings.Contains(name, "/"):
		errs = append(errs, field.Invalid(fld.Child("resource"), exp.Resource, "want KIND/NAME, e.g. Deployment/cart"))
	default:
		c.name = name
		if c.kind = judgedKindByName(kind); c.kind == nil {
			errs = append(errs, field.NotSupported(fld.Child("resource"), kind, judgedKindNames()))
		}
	}
	c.expect = strings.ToLower(exp.Expect)
	if exp.Expect == "" {
		errs = append(errs, field.Required(fld.Child("expect"), "allow, audit, warn or deny"))
	} else if !contains(expectValues, c.expect) {
		errs = append(errs, field.NotSupported(fld.Child("expect"), exp.Expect, expectValues))
	}
	if exp.Rule != "" {
		for _, r := range rules.ObjectReasons {
			if strings.EqualFold(r, exp.Rule) {
				c.rule = r
			}
		}
		if c.rule == "" {
			errs = append(errs, field.NotSupported(fld.Child("rule"), exp.Rule, rules.ObjectReasons))
		}
	}
	if exp.Policy != "" {
		p, err := parsePolicyFilter(exp.Policy)
		if err != "" {
			errs = append(errs, field.Invalid(fld.Child("policy"), exp.Policy, err))
		}
		c.policy = p
	}
	return c, errs
}

// parsePolicyFilter reads lbs/NAME, clbs/NAME, LoopbackService/NAME,
// ClusterLoopbackService/NAME (any case, singular or plural) or NAME.
func parsePolicyFilter(s string) (*policyFilter, string) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		return &policyFilter{name: s}, ""
	}
	switch strings.ToLower(kind) {
	case "lbs", "loopbackservice", "loopbackservices":
		kind = rules.KindLoopbackService
	case "clbs", "clusterloopbackservice", "clusterloopbackservices":
		kind = rules.KindClusterLoopbackService
	default:
		return nil, "want lbs/NAME, clbs/NAME or NAME"
	}
	if name == "" || strings.Contains(name, "/") {
		return nil, "want lbs/NAME, clbs/NAME or NAME"
	}
	return &policyFilter{kind: kind, name: name}, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
