package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

// namespaceNameLabel is the label the API server puts on every namespace
// (its name, immutable); cluster policies often select on it.
const namespaceNameLabel = rules.NamespaceNameLabel

// Output formats of check.
const (
	outputText  = "text"
	outputJSON  = "json"
	outputSARIF = "sarif"
	outputYAML  = "yaml"
	outputWide  = "wide"
)

type checkOptions struct {
	files           []string
	policies        []string
	namespace       string
	namespaceLabels []string
	output          string
	// strict: a file of a directory that holds no Kubernetes object is an
	// error, not skipped.
	strict     bool
	exclude    []string
	valueFiles []string
	setValues  []string
}

func newCheckCommand(streams genericiooptions.IOStreams, display string) *cobra.Command {
	o := &checkOptions{namespace: "default", output: outputText}
	cmd := &cobra.Command{
		Use:   "check -f FILE|DIR|- [-f ...] [--policies FILE|DIR ...]",
		Short: "Judge manifests against loopback-only policies, as the admission webhook would",
		Long: checkIntroHelp() + `

Input: files (any name), directories and "-" for standard input (e.g.
kustomize build output). Multi-document YAML, JSON and List kinds are
read. --policies reads only policies and Namespaces.

A directory is read as a repository: a Helm chart (a directory with
Chart.yaml) is rendered as helm template would (--values, --set), a
kustomization (kustomization.yaml) is built as kustomize build would (a
base that another kustomization uses is judged through it only), and the
files of either are not read again; its other .yaml, .yml and .json files
are read, those that hold no Kubernetes object are skipped with a count
(--strict: an error), and --exclude leaves out paths by glob.

Namespaces come from the objects, or --namespace for those without one.
A ClusterLoopbackService's namespaceSelector sees the labels of Namespace
objects in the input, --namespace-labels, and kubernetes.io/metadata.name,
which the API server sets on every namespace.

Findings about one namespace see the Pods and Services of that namespace in
the input: a Service is judged against the Pods it selects, and a Pod or pod
template against the Services that select it.

Exit status: 0 when nothing would be denied (Warn and Audit findings are
reported but do not fail), 1 when an object would be denied, 2 on bad input
(malformed YAML, an invalid policy, an unreadable file), reported with its
file and line.`,
		Example: fmt.Sprintf(`  # A directory of manifests with the policies in it
  %[1]s check -f deploy/

  # A repository: its charts rendered with these values, its kustomizations built
  %[1]s check -f . --values prod-values.yaml --set image.tag=1.2 --exclude testdata

  # kustomize output on stdin, policies kept in another directory
  kustomize build overlays/prod | %[1]s check -f - --policies platform/policies/

  # Objects without a namespace go to "shop", which has the label loopguard.io/enforce=true
  %[1]s check -f app.yaml -n shop --namespace-labels shop=loopguard.io/enforce=true

  # SARIF for GitHub code scanning, JSON for scripts
  %[1]s check -f deploy/ -o sarif > loopguard.sarif
  %[1]s check -f deploy/ -o json | jq '.findings[] | select(.action == "Deny")'`, display),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(o, streams)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "filename", "f", nil, "manifests to check: a file, a directory (recursive) or - for standard input; repeatable")
	f.StringArrayVar(&o.policies, "policies", nil, "more LoopbackService, ClusterLoopbackService and Namespace objects: a file, a directory (recursive) or -; other kinds there are ignored; repeatable")
	f.StringVarP(&o.namespace, "namespace", "n", o.namespace, "namespace of the objects that have none")
	f.StringArrayVar(&o.namespaceLabels, "namespace-labels", nil, "labels of a namespace for cluster policies: NAMESPACE=KEY=VALUE[,KEY=VALUE...]; repeatable")
	f.StringVarP(&o.output, "output", "o", o.output, "output format: text, json or sarif")
	f.BoolVar(&o.strict, "strict", false, "fail on a file of a directory that holds no Kubernetes object, instead of skipping it")
	f.StringArrayVar(&o.exclude, "exclude", nil, "leave out the paths of a directory that match this glob (e.g. 'testdata', '*.tmpl.yaml', 'charts/*/ci'), relative to the directory or by base name; repeatable")
	f.StringArrayVar(&o.valueFiles, "values", nil, "a values file for the Helm charts of the input, as helm template --values; repeatable")
	f.StringArrayVar(&o.setValues, "set", nil, "a value for the Helm charts of the input, as helm template --set (key=value,key2=value2); repeatable")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("policies", "yaml", "yml", "json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputText, outputJSON, outputSARIF}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// checkInput is what the input holds, once read and validated.
type checkInput struct {
	files    int
	objects  []*judgedObject // in input order
	policies int
	// nsPolicies are the LoopbackServices by namespace.
	nsPolicies map[string][]*rules.Policy
	// clusterPolicies are the ClusterLoopbackServices.
	clusterPolicies []*rules.Policy
	nsLabels        map[string]map[string]string
	skipped         int
	// skippedFiles are the files of directories without any Kubernetes
	// object.
	skippedFiles []string
	warnings     []string
}

// judgedObject is one object of a kind the rules judge.
type judgedObject struct {
	doc       *document
	obj       runtime.Object
	namespace string // the object's, or --namespace
}

// checkResult is a finding with where it is.
type checkResult struct {
	file    string
	line    int
	finding rules.Finding
	object  *judgedObject
}

func runCheck(o *checkOptions, streams genericiooptions.IOStreams) error {
	switch o.output {
	case outputText, outputJSON, outputSARIF:
	default:
		return withCode(ExitError, fmt.Errorf("unknown output format %q: use text, json or sarif", o.output))
	}
	in, err := loadCheckInput(o, streams.In)
	if err != nil {
		if o.output == outputSARIF {
			_ = writeSARIFError(streams.Out, err)
		}
		return withCode(ExitError, err)
	}
	for _, w := range in.warnings {
		fmt.Fprintf(streams.ErrOut, "warning: %s\n", w)
	}
	results := evaluateInput(in)
	switch o.output {
	case outputJSON:
		err = writeCheckJSON(streams.Out, in, results)
	case outputSARIF:
		err = writeSARIF(streams.Out, results)
	default:
		writeCheckText(streams.Out, in, results)
	}
	if err != nil {
		return withCode(ExitError, err)
	}
	for _, r := range results {
		if r.finding.Action == v1alpha1.ActionDeny {
			return withCode(ExitViolations, nil)
		}
	}
	return nil
}

// policyDef remembers where a policy was defined, to report conflicting
// duplicates.
type policyDef struct {
	doc  *document
	spec string
}

// loadCheckInput reads, decodes and validates every input. Every error is
// collected so that one run reports them all.
func loadCheckInput(o *checkOptions, stdin io.Reader) (*checkInput, error) {
	if len(o.files) == 0 {
		return nil, errors.New("no input: give -f FILE, DIR or - (standard input)")
	}
	if o.namespace == "" {
		return nil, errors.New("--namespace must not be empty")
	}
	in := &checkInput{nsPolicies: map[string][]*rules.Policy{}, nsLabels: map[string]map[string]string{}}
	flagLabels, err := parseNamespaceLabels(o.namespaceLabels)
	if err != nil {
		return nil, err
	}
	var errs inputErrors
	defs := map[rules.PolicyRef]policyDef{}
	nsObjects := map[string]map[string]string{}

	readStdin := false
	walk := walkOptions{namespace: o.namespace, values: helmValues{files: o.valueFiles, set: o.setValues}, exclude: o.exclude}
	load := func(paths []string, policiesOnly bool) error {
		srcs, err := readSources(paths, stdin, &readStdin, walk)
		if err != nil {
			return err
		}
		in.files += len(srcs)
		for _, src := range srcs {
			docs, es := parseDocuments(src)
			if src.inDir && len(docs) == 0 && len(es) > 0 && allNotObjects(es) {
				// A directory holds other files too (CI configs, values).
				in.skippedFiles = append(in.skippedFiles, src.name)
				if o.strict {
					errs = append(errs, &inputError{file: src.name, line: es[0].line, msg: es[0].msg + " (--strict)"})
				}
				continue
			}
			if src.name == stdinName && len(docs) == 0 && len(es) == 0 {
				// Most likely the command before the pipe failed.
				es = inputErrors{{file: stdinName, msg: "no objects on standard input (did the command before the pipe fail?)"}}
			}
			for _, d := range docs {
				es = append(es, in.add(d, o.namespace, policiesOnly, defs, nsObjects)...)
				// Decoded: only the node tree (for the lines of
				// findings) is kept.
				d.raw = nil
			}
			if len(es) > 0 && looksLikeHelmTemplate(src.data) {
				es[0].msg += helmTemplateHint
			}
			errs = append(errs, es...)
		}
		return nil
	}
	if err := load(o.files, false); err != nil {
		return nil, err
	}
	if len(o.policies) > 0 {
		if err := load(o.policies, true); err != nil {
			return nil, err
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	// Namespace labels: Namespace objects, then --namespace-labels, then
	// the name label the API server sets.
	for ns, l := range nsObjects {
		in.nsLabels[ns] = l
	}
	for ns, l := range flagLabels {
		m := in.nsLabels[ns]
		if m == nil {
			m = map[string]string{}
			in.nsLabels[ns] = m
		}
		for k, v := range l {
			m[k] = v
		}
	}
	if n := len(in.skippedFiles); n > 0 {
		in.warnings = append(in.warnings, fmt.Sprintf("skipped %s of the directories given that hold no Kubernetes object (--strict fails on them): %s",
			plural(n, "file"), strings.Join(firstN(in.skippedFiles, 5), ", ")))
	}
	if in.policies == 0 {
		in.warnings = append(in.warnings, "no LoopbackService or ClusterLoopbackService in the input or --policies: nothing is protected")
	}
	return in, nil
}

// add classifies and decodes one document.
func (in *checkInput) add(d *document, defaultNS string, policiesOnly bool, defs map[rules.PolicyRef]policyDef, nsObjects map[string]map[string]string) inputErrors {
	gvk := d.gvk()
	_, docNS := d.metadata()
	ns := docNS
	if ns == "" {
		ns = defaultNS
	}
	switch gvk {
	case gvkLBS:
		var lbs v1alpha1.LoopbackService
		es, ok := d.decodeInto(&lbs, true, d.describe(ns))
		if !ok {
			return es
		}
		lbs.Namespace = ns
		if es = append(es, in.policyErrors(d, d.describe(ns), validatePolicy(d.raw, gvk, ns))...); len(es) > 0 {
			return es
		}
		p, err := rules.Compile(&lbs)
		if err != nil {
			return inputErrors{{file: d.file, line: d.line, msg: err.Error()}}
		}
		return in.addPolicy(d, p, lbs.Spec, defs)
	case gvkCLBS:
		var clbs v1alpha1.ClusterLoopbackService
		es, ok := d.decodeInto(&clbs, true, d.describe(""))
		if !ok {
			return es
		}
		if es = append(es, in.policyErrors(d, d.describe(""), validatePolicy(d.raw, gvk, ""))...); len(es) > 0 {
			return es
		}
		p, err := rules.CompileCluster(&clbs)
		if err != nil {
			return inputErrors{{file: d.file, line: d.line, msg: err.Error()}}
		}
		return in.addPolicy(d, p, clbs.Spec, defs)
	case gvkNamespace:
		var n corev1.Namespace
		if es, ok := d.decodeInto(&n, false, d.describe("")); !ok {
			return es
		}
		if n.Name == "" {
			return inputErrors{{file: d.file, line: d.line, msg: "Namespace: metadata.name is required"}}
		}
		l := map[string]string{}
		for k, v := range n.Labels {
			l[k] = v
		}
		nsObjects[n.Name] = l
		return nil
	}
	if policiesOnly {
		return nil // --policies contributes policies and Namespaces only
	}
	kind, judged := kinds.ByGVK(gvk)
	if !judged {
		if want, known := knownKindVersion(gvk.Kind); known && want != gvk {
			in.warnings = append(in.warnings, fmt.Sprintf("%s:%d: %s %s is not judged: loopguard judges %s %s only", d.file, d.line, d.apiVersion, d.kind, want.GroupVersion(), want.Kind))
		}
		in.skipped++
		return nil
	}
	obj := kind.New()
	if es, ok := d.decodeInto(obj, false, d.describe(ns)); !ok {
		return es
	}
	obj.SetNamespace(ns)
	in.objects = append(in.objects, &judgedObject{doc: d, obj: obj, namespace: ns})
	return nil
}

func (in *checkInput) policyErrors(d *document, what string, errs field.ErrorList) inputErrors {
	var out inputErrors
	for _, e := range errs {
		msg := e.Error()
		if e.Field == "<nil>" || e.Field == "" {
			msg = e.Detail // the object as a whole, e.g. errRulesNotChecked
		}
		out = append(out, &inputError{file: d.file, line: locate(d.node, e.Field), msg: what + ": " + msg})
	}
	return out
}

// addPolicy records a compiled policy; the same policy twice is fine when
// both copies agree (e.g. in the input and in --policies), an error when
// they differ.
func (in *checkInput) addPolicy(d *document, p *rules.Policy, spec any, defs map[rules.PolicyRef]policyDef) inputErrors {
	b, _ := json.Marshal(spec)
	if prev, dup := defs[p.Ref]; dup {
		if prev.spec == string(b) {
			return nil
		}
		return inputErrors{{file: d.file, line: d.line, msg: fmt.Sprintf("%s is defined twice with different specs (also at %s:%d)", p.Ref, prev.doc.file, prev.doc.line)}}
	}
	defs[p.Ref] = policyDef{doc: d, spec: string(b)}
	in.policies++
	if p.NamespaceSelector != nil {
		in.clusterPolicies = append(in.clusterPolicies, p)
	} else {
		in.nsPolicies[p.Ref.Namespace] = append(in.nsPolicies[p.Ref.Namespace], p)
	}
	return nil
}

// parseNamespaceLabels parses --namespace-labels ns=k=v,k2=v2.
func parseNamespaceLabels(flags []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, f := range flags {
		ns, rest, ok := strings.Cut(f, "=")
		if !ok || ns == "" {
			return nil, fmt.Errorf("--namespace-labels %q: want NAMESPACE=KEY=VALUE[,KEY=VALUE...]", f)
		}
		m := out[ns]
		if m == nil {
			m = map[string]string{}
			out[ns] = m
		}
		if rest == "" {
			continue
		}
		l, err := labels.ConvertSelectorToLabelsMap(rest)
		if err != nil {
			return nil, fmt.Errorf("--namespace-labels %q: %w", f, err)
		}
		for k, v := range l {
			m[k] = v
		}
	}
	return out, nil
}

// allNotObjects reports whether every error is a document that is valid
// YAML but no Kubernetes object.
func allNotObjects(es inputErrors) bool {
	for _, e := range es {
		if !e.notObject {
			return false
		}
	}
	return true
}

// firstN is the first n items, and how many more.
func firstN(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(slices.Clone(items[:n]), fmt.Sprintf("and %d more", len(items)-n))
}
