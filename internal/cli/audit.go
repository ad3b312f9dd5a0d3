package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

type auditOptions struct {
	flags         *genericclioptions.ConfigFlags
	allNamespaces bool
	output        string
}

func newAuditCommand(streams genericiooptions.IOStreams, display string) *cobra.Command {
	o := &auditOptions{flags: genericclioptions.NewConfigFlags(true)}
	cmd := &cobra.Command{
		Use:   "audit [-n NAMESPACE | -A] [-o wide|json|yaml]",
		Short: "Report what a live cluster already exposes, with read-only calls",
		Long: `audit reads the LoopbackServices and ClusterLoopbackServices of a cluster and
judges its Pods, workloads and Services with the rules the admission webhook
runs, per namespace, against every policy that applies there. It also lists
the NetworkPolicies that re-open a protected port (NetworkPolicy allow-lists
are unions, so they defeat the one loopguard manages) and the hostNetwork pods
a policy selects.

It needs only the loopguard CRDs, not the operator, and only get and list
permissions: policies, namespaces, pods, services, networkpolicies,
deployments, replicasets, statefulsets, daemonsets, jobs, cronjobs and
replicationcontrollers. Pods, ReplicaSets and Jobs controlled by a workload
are judged through that workload, as the operator's audit does.

When loopguard's node agents run, it also lists the protected ports that
really listen beyond loopback (their NodeBindReports; list permission on
nodebindreports), next to what the objects declare; one under a Deny
policy fails the audit like a Deny finding.

Exit status: 0 when nothing would be denied, 1 when an existing object
exposes a port a Deny policy protects, 2 when the cluster cannot be read or
has no loopguard CRDs.`,
		Example: fmt.Sprintf(`  # The current namespace of the current context
  %[1]s audit

  # Every namespace, as JSON for a script
  %[1]s audit -A -o json

  # Another cluster and namespace, with each finding's full message
  %[1]s audit --context prod -n shop -o wide`, display),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.flags.ToRESTConfig()
			if err != nil {
				return withCode(ExitError, err)
			}
			ns := ""
			if !o.allNamespaces {
				if ns, _, err = o.flags.ToRawKubeConfigLoader().Namespace(); err != nil {
					return withCode(ExitError, err)
				}
			}
			return runAudit(cmd.Context(), cfg, ns, o.output, streams)
		},
	}
	o.flags.CacheDir = nil // audit keeps no discovery cache
	o.flags.AddFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "audit every namespace")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: wide (adds each finding's message), json or yaml; a table by default")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputWide, outputJSON, outputYAML}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// auditScheme knows the built-in kinds and loopguard's.
func auditScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// auditReport is audit's JSON and YAML output.
type auditReport struct {
	SchemaVersion string `json:"schemaVersion"`
	// Namespaces audited: those where at least one policy applies.
	Namespaces      []string               `json:"namespaces"`
	Findings        []reportFinding        `json:"findings"`
	Conflicts       []reportConflict       `json:"conflicts"`
	HostNetworkPods []reportHostNetworkPod `json:"hostNetworkPods"`
	// NodeMates are pods that can enter the network namespace of a
	// protected pod on the same node.
	NodeMates       []reportNodeMate      `json:"nodeMates"`
	InvalidPolicies []reportInvalidPolicy `json:"invalidPolicies"`
	// Runtime is what the node agents saw listening (NodeBindReports);
	// absent without reports.
	Runtime  *reportRuntime `json:"runtime,omitempty"`
	Warnings []string       `json:"warnings"`
	Summary  auditSummary   `json:"summary"`
}

// reportConflict is a NetworkPolicy ingress rule that admits a protected
// port of a protected pod.
type reportConflict struct {
	Policy        reportPolicy `json:"policy"`
	Namespace     string       `json:"namespace"`
	NetworkPolicy string       `json:"networkPolicy"`
	// Rule is the index in spec.ingress.
	Rule int `json:"rule"`
	// Ports is the protected range it admits: "15000/TCP", "6060-6069/TCP".
	Ports  string `json:"ports"`
	Reason string `json:"reason"`
}

// reportHostNetworkPod is a hostNetwork pod that a policy selects: its
// loopback is the node's (internal/hostnet analyses it).
type reportHostNetworkPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
	// Policies select the pod; hostNetwork is each one's setting: Deny
	// (also a HostNetwork finding under its enforcementAction) or Audit.
	Policies []hostNetworkPolicy `json:"policies"`
	// ProtectedPorts are protected ports the pod declares, so serves on the
	// node's network.
	ProtectedPorts []string `json:"protectedPorts"`
	// NodeMates are the other hostNetwork pods on the same node, which
	// share its loopback (among the pods audit read: its namespace with
	// -n, every namespace with -A).
	NodeMates []string `json:"nodeMates"`
	// Summary says it in a sentence.
	Summary string `json:"summary"`
}

type hostNetworkPolicy struct {
	reportPolicy `json:",inline"`
	HostNetwork  string `json:"hostNetwork"`
}

// reportInvalidPolicy is a policy the API server accepted but loopguard
// cannot compile (e.g. a label selector with bad values); it protects
// nothing.
type reportInvalidPolicy struct {
	Policy reportPolicy `json:"policy"`
	Error  string       `json:"error"`
}

type auditSummary struct {
	Namespaces      int `json:"namespaces"`
	Policies        int `json:"policies"`
	Objects         int `json:"objects"`
	Findings        int `json:"findings"`
	Deny            int `json:"deny"`
	Warn            int `json:"warn"`
	Audit           int `json:"audit"`
	Conflicts       int `json:"conflicts"`
	HostNetworkPods int `json:"hostNetworkPods"`
	NodeMates       int `json:"nodeMates"`
	// RuntimeListeners are protected ports the node agents saw listening
	// beyond loopback; RuntimeDeny those under a Deny policy (they fail
	// the audit like a Deny finding).
	RuntimeListeners int    `json:"runtimeListeners"`
	RuntimeDeny      int    `json:"runtimeDeny"`
	Result           string `json:"result"`
}

// errNoCRDs is returned when the cluster does not serve loopguard.io.
var errNoCRDs = errors.New("no loopguard CRDs installed: this cluster does not serve loopbackservices.loopguard.io and clusterloopbackservices.loopguard.io, so there is nothing to audit (install them with `kubectl apply -k config/crd`)")

// runAudit audits namespace, or every namespace when it is empty, and
// writes the report in the output format.
func runAudit(ctx context.Context, cfg *rest.Config, namespace, output string, streams genericiooptions.IOStreams) error {
	switch output {
	case "", outputWide, outputJSON, outputYAML:
	default:
		return withCode(ExitError, fmt.Errorf("unknown output format %q: use wide, json or yaml", output))
	}
	var prog *progress
	if output == "" || output == outputWide {
		prog = newProgress(streams.ErrOut, progressAfter)
	}
	rep, err := audit(ctx, cfg, namespace, prog)
	prog.Done()
	if err != nil {
		return withCode(ExitError, err)
	}
	switch output {
	case outputJSON:
		err = writeJSON(streams.Out, rep)
	case outputYAML:
		var b []byte
		if b, err = yaml.Marshal(rep); err == nil {
			_, err = streams.Out.Write(b)
		}
	default:
		for _, w := range rep.Warnings {
			fmt.Fprintf(streams.ErrOut, "warning: %s\n", w)
		}
		err = writeAuditTable(streams.Out, rep, namespace, output == outputWide)
	}
	if err != nil {
		return withCode(ExitError, err)
	}
	if rep.Summary.Result == "fail" {
		return withCode(ExitViolations, nil)
	}
	return nil
}

// clusterState is what audit read.
type clusterState struct {
	nsPolicies      map[string][]*rules.Policy
	clusterPolicies []*rules.Policy
	nsLabels        map[string]labels.Set
	pods            map[string][]*corev1.Pod
	services        map[string][]*corev1.Service
	netpols         map[string][]*networkingv1.NetworkPolicy
	workloads       map[string][]runtime.Object
	endpointSlices  []*discoveryv1.EndpointSlice
	hostPods        []*corev1.Pod
	riskyPods       []*corev1.Pod
	warnings        []string
}

func audit(ctx context.Context, cfg *rest.Config, namespace string, prog *progress) (*auditReport, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		// Sequential paged lists: client-go's default 5/s would make a big
		// cluster's audit crawl.
		cfg.QPS, cfg.Burst = 50, 100
	}
	c, err := client.New(cfg, client.Options{Scheme: auditScheme()})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client: %w", err)
	}
	rep := &auditReport{
		SchemaVersion: auditSchemaVersion, Namespaces: []string{}, Findings: []reportFinding{},
		Conflicts: []reportConflict{}, HostNetworkPods: []reportHostNetworkPod{}, NodeMates: []reportNodeMate{},
		InvalidPolicies: []reportInvalidPolicy{}, Warnings: []string{},
	}
	st := &clusterState{nsPolicies: map[string][]*rules.Policy{}, nsLabels: map[string]labels.Set{}}
	var scope []client.ListOption
	if namespace != "" {
		scope = append(scope, client.InNamespace(namespace))
	}

	// Policies.
	prog.Set("reading policies")
	var clbs v1alpha1.ClusterLoopbackServiceList
	clbsErr := c.List(ctx, &clbs)
	var lbs v1alpha1.LoopbackServiceList
	lbsErr := c.List(ctx, &lbs, scope...)
	if meta.IsNoMatchError(clbsErr) || meta.IsNoMatchError(lbsErr) || apierrors.IsNotFound(lbsErr) {
		return nil, errNoCRDs
	}
	if lbsErr != nil {
		return nil, fmt.Errorf("failed to list LoopbackServices: %w", lbsErr)
	}
	switch {
	case apierrors.IsForbidden(clbsErr):
		rep.Warnings = append(rep.Warnings, "cannot list ClusterLoopbackServices (forbidden): cluster policies are not audited")
	case clbsErr != nil:
		return nil, fmt.Errorf("failed to list ClusterLoopbackServices: %w", clbsErr)
	}
	for i := range lbs.Items {
		p, err := rules.Compile(&lbs.Items[i])
		if err != nil {
			rep.invalid(rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: lbs.Items[i].Namespace, Name: lbs.Items[i].Name}, err)
			continue
		}
		st.nsPolicies[p.Ref.Namespace] = append(st.nsPolicies[p.Ref.Namespace], p)
		rep.Summary.Policies++
	}
	for i := range clbs.Items {
		p, err := rules.CompileCluster(&clbs.Items[i])
		if err != nil {
			rep.invalid(rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: clbs.Items[i].Name}, err)
			continue
		}
		st.clusterPolicies = append(st.clusterPolicies, p)
		rep.Summary.Policies++
	}

	// Namespaces and their labels, for cluster policies.
	prog.Set("reading namespaces")
	var namespaces []string
	if namespace == "" {
		items, err := listAll(ctx, c, func() client.ObjectList { return &corev1.NamespaceList{} })
		if err != nil {
			return nil, fmt.Errorf("failed to list namespaces (auditing every namespace needs it): %w", err)
		}
		for _, o := range items {
			ns := o.(*corev1.Namespace)
			namespaces = append(namespaces, ns.Name)
			st.nsLabels[ns.Name] = namespaceLabels(ns.Name, ns.Labels)
		}
	} else {
		namespaces = []string{namespace}
		var ns corev1.Namespace
		err := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns)
		switch {
		case err == nil:
			st.nsLabels[namespace] = namespaceLabels(namespace, ns.Labels)
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("namespace %q not found", namespace)
		case apierrors.IsForbidden(err):
			st.nsLabels[namespace] = namespaceLabels(namespace, nil)
			if len(st.clusterPolicies) > 0 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("cannot read namespace %s (forbidden): cluster policies see only its %s label", namespace, namespaceNameLabel))
			}
		default:
			return nil, fmt.Errorf("failed to read namespace %s: %w", namespace, err)
		}
	}
	sort.Strings(namespaces)

	clusterSet := rules.NewSet(st.clusterPolicies)
	envs := map[string]*rules.Env{}
	for _, ns := range namespaces {
		env := rules.NewEnv(ns, st.nsLabels[ns], rules.NewSet(st.nsPolicies[ns]), clusterSet)
		if applicable(env) {
			envs[ns] = env
			rep.Namespaces = append(rep.Namespaces, ns)
		}
	}
	rep.Summary.Namespaces = len(rep.Namespaces)
	if len(envs) == 0 {
		rep.finish()
		return rep, nil
	}

	if err := st.read(ctx, c, scope, envs, prog); err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, st.warnings...)
	for i, ns := range rep.Namespaces {
		prog.Set("judging namespace %s (%d/%d)", ns, i+1, len(rep.Namespaces))
		st.judge(envs[ns], rep)
	}
	prog.Set("judging endpointslices")
	st.judgeEndpoints(envs, rep)
	prog.Set("analysing hostNetwork pods")
	st.hostNetworkPods(envs, rep)
	st.nodeMates(envs, rep)
	prog.Set("reading the node agents' reports")
	st.judgeRuntime(envs, readReports(ctx, c, rep), time.Now(), rep)
	rep.finish()
	return rep, nil
}

func namespaceLabels(name string, l map[string]string) labels.Set {
	return rules.NamespaceLabels(name, l)
}

// applicable reports whether a policy of env applies in its namespace.
func applicable(env *rules.Env) bool { return len(env.Policies()) > 0 }

func (rep *auditReport) invalid(ref rules.PolicyRef, err error) {
	rep.InvalidPolicies = append(rep.InvalidPolicies, reportInvalidPolicy{
		Policy: reportPolicy{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}, Error: err.Error(),
	})
	rep.Warnings = append(rep.Warnings, fmt.Sprintf("%v; the policy protects nothing until it is fixed", err))
}

// read lists what the rules need, in the scope, keeping the namespaces
// where a policy applies.
func (st *clusterState) read(ctx context.Context, c client.Reader, scope []client.ListOption, envs map[string]*rules.Env, prog *progress) error {
	st.pods = map[string][]*corev1.Pod{}
	st.services = map[string][]*corev1.Service{}
	st.netpols = map[string][]*networkingv1.NetworkPolicy{}
	st.workloads = map[string][]runtime.Object{}
	keep := func(o runtime.Object) (string, bool) {
		ns := o.(metav1.Object).GetNamespace()
		if p, ok := o.(*corev1.Pod); ok && p.Spec.HostNetwork && p.DeletionTimestamp == nil {
			// Every hostNetwork pod read, for the node-mates of the
			// audited ones.
			st.hostPods = append(st.hostPods, p)
		}
		if p, ok := o.(*corev1.Pod); ok {
			st.collectRiskyPod(p)
		}
		_, ok := envs[ns]
		return ns, ok
	}
	lists := []struct {
		name string
		new  func() client.ObjectList
		add  func(ns string, o runtime.Object)
	}{
		{"pods", func() client.ObjectList { return &corev1.PodList{} }, func(ns string, o runtime.Object) {
			if p := o.(*corev1.Pod); p.DeletionTimestamp == nil {
				st.pods[ns] = append(st.pods[ns], p)
			}
		}},
		{"services", func() client.ObjectList { return &corev1.ServiceList{} }, func(ns string, o runtime.Object) {
			st.services[ns] = append(st.services[ns], o.(*corev1.Service))
		}},
		{"networkpolicies", func() client.ObjectList { return &networkingv1.NetworkPolicyList{} }, func(ns string, o runtime.Object) {
			st.netpols[ns] = append(st.netpols[ns], o.(*networkingv1.NetworkPolicy))
		}},
	}
	for _, k := range kinds.Workloads() {
		lists = append(lists, struct {
			name string
			new  func() client.ObjectList
			add  func(ns string, o runtime.Object)
		}{k.Resource, k.NewList, func(ns string, o runtime.Object) {
			st.workloads[ns] = append(st.workloads[ns], o)
		}})
	}
	for _, l := range lists {
		prog.Set("listing %s", l.name)
		items, err := listAll(ctx, c, l.new, scope...)
		if err != nil {
			return fmt.Errorf("failed to list %s: %w", l.name, err)
		}
		for _, o := range items {
			if ns, ok := keep(o); ok {
				l.add(ns, o)
			}
		}
	}
	return st.readEndpointSlices(ctx, c, scope, prog)
}

// listPageSize bounds each list call; big clusters are read in pages.
const listPageSize = 500

// listAll lists every object, page by page.
func listAll(ctx context.Context, c client.Reader, newList func() client.ObjectList, opts ...client.ListOption) ([]runtime.Object, error) {
	var out []runtime.Object
	cont := ""
	for {
		l := newList()
		o := append(append([]client.ListOption{}, opts...), client.Limit(listPageSize), client.Continue(cont))
		if err := c.List(ctx, l, o...); err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if cont = l.GetContinue(); cont == "" {
			return out, nil
		}
	}
}

// judge audits one namespace (rules.Audit): its objects, and the
// NetworkPolicies that defeat each applicable policy.
func (st *clusterState) judge(env *rules.Env, rep *auditReport) {
	ns := env.Namespace
	nps := st.netpols[ns]
	sort.Slice(nps, func(i, j int) bool { return nps[i].Name < nps[j].Name })
	// Every NetworkPolicy is judged, loopguard's own included: a label
	// anyone with edit can write proves nothing, and loopguard's own close
	// every overlapping policy's ports (netpol.Closed), so they show here
	// only while one is out of date, which is when they do re-open a port.
	res := rules.Audit(rules.Snapshot{Env: env, Pods: st.pods[ns], Services: st.services[ns], Workloads: st.workloads[ns], NetworkPolicies: nps})
	rep.Summary.Objects += len(res.Judged)
	findings := res.Findings()
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.Object.Kind != b.Object.Kind {
			return a.Object.Kind < b.Object.Kind
		}
		if a.Object.Name != b.Object.Name {
			return a.Object.Name < b.Object.Name
		}
		return a.Field < b.Field
	})
	for _, f := range findings {
		rep.Findings = append(rep.Findings, newReportFinding(f))
	}
	for _, cf := range res.Conflicts {
		rep.Conflicts = append(rep.Conflicts, reportConflict{
			Policy: refOf(cf.Policy), Namespace: ns, NetworkPolicy: cf.Name, Rule: cf.Rule,
			Ports: cf.Port.String(), Reason: cf.Reason,
		})
	}
}

// hostNetworkPods reports, with internal/hostnet, the hostNetwork pods of
// the audited namespaces that a policy selects, with the protected ports
// they serve on the node and the pods they share the node's loopback with.
func (st *clusterState) hostNetworkPods(envs map[string]*rules.Env, rep *auditReport) {
	envFor := func(ns string) *rules.Env {
		if e, ok := envs[ns]; ok {
			return e
		}
		return rules.NewEnv(ns, nil)
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range st.hostPods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	var reports []hostnet.PodReport
	for _, node := range sortedKeys(byNode) {
		if node == "" {
			// Unscheduled pods share no node with anyone yet.
			for _, p := range byNode[node] {
				reports = append(reports, hostnet.Analyze("", []*corev1.Pod{p}, envFor)...)
			}
			continue
		}
		reports = append(reports, hostnet.Analyze(node, byNode[node], envFor)...)
	}
	sort.SliceStable(reports, func(i, j int) bool {
		return reports[i].Namespace+"/"+reports[i].Name < reports[j].Namespace+"/"+reports[j].Name
	})
	pods := map[string]*corev1.Pod{}
	for _, p := range st.hostPods {
		pods[p.Namespace+"/"+p.Name] = p
	}
	for _, r := range reports {
		if !r.Critical() {
			continue
		}
		pod := pods[r.Namespace+"/"+r.Name]
		h := reportHostNetworkPod{
			Namespace: r.Namespace, Name: r.Name, Node: r.Node, Summary: r.Summary(),
			ProtectedPorts: append([]string{}, r.ProtectedPorts...), NodeMates: append([]string{}, r.NodeMates...),
		}
		matching := envFor(r.Namespace).MatchingPolicies(labels.Set(pod.Labels))
		sort.Slice(matching, func(i, j int) bool { return matching[i].Ref.String() < matching[j].Ref.String() })
		for _, p := range matching {
			h.Policies = append(h.Policies, hostNetworkPolicy{reportPolicy: refOf(p.Ref), HostNetwork: string(p.HostNetwork)})
		}
		rep.HostNetworkPods = append(rep.HostNetworkPods, h)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func refOf(r rules.PolicyRef) reportPolicy {
	return reportPolicy{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// finish computes the summary.
func (rep *auditReport) finish() {
	actions := make([]v1alpha1.EnforcementAction, len(rep.Findings))
	for i, f := range rep.Findings {
		actions[i] = v1alpha1.EnforcementAction(f.Action)
	}
	c := countActions(actions)
	s := &rep.Summary
	s.Findings, s.Deny, s.Warn, s.Audit = len(rep.Findings), c.deny, c.warn, c.audit
	s.Conflicts, s.HostNetworkPods, s.NodeMates = len(rep.Conflicts), len(rep.HostNetworkPods), len(rep.NodeMates)
	if rep.Runtime != nil {
		s.RuntimeListeners = len(rep.Runtime.Listeners)
		for _, l := range rep.Runtime.Listeners {
			if l.Action == string(v1alpha1.ActionDeny) {
				s.RuntimeDeny++
			}
		}
	}
	s.Result = "pass"
	if c.deny > 0 || s.RuntimeDeny > 0 {
		s.Result = "fail"
	}
}

// shortPolicy renders a policy as kubectl names it: lbs/envoy-admin,
// clbs/agent-admin.
func shortPolicy(p reportPolicy) string {
	if p.Kind == rules.KindClusterLoopbackService {
		return "clbs/" + p.Name
	}
	return "lbs/" + p.Name
}

func shortPolicies(ps []reportPolicy) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = shortPolicy(p)
	}
	return strings.Join(out, ",")
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// abbreviate joins at most n items: "a,b,c and 4 more".
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ","), len(items)-n)
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// writeAuditTable prints kubectl-style tables: findings, then NetworkPolicy
// conflicts and hostNetwork pods when there are any, then a summary.
func writeAuditTable(out io.Writer, rep *auditReport, namespace string, wide bool) error {
	where := "namespace " + namespace
	if namespace == "" {
		where = "any namespace"
	}
	s := rep.Summary
	if s.Namespaces == 0 {
		_, err := fmt.Fprintf(out, "No LoopbackService or ClusterLoopbackService applies in %s: nothing to audit.\n", where)
		return err
	}
	// table prints one section with its own column widths.
	table := func(title, header string, rows [][]string) error {
		if len(rows) == 0 {
			return nil
		}
		if title != "" {
			fmt.Fprintf(out, "\n%s\n", title)
		}
		w := printers.GetNewTabWriter(out)
		fmt.Fprintln(w, header)
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		}
		return w.Flush()
	}
	var rows [][]string
	for _, f := range rep.Findings {
		port := "*"
		if f.Port != 0 {
			port = strconv.Itoa(int(f.Port)) + "/" + f.Protocol
		}
		row := []string{shortPolicies(f.Policies), f.Object.Kind, nsName(f.Object.Namespace, f.Object.Name), f.Field, port, f.Action, f.Reason}
		if wide {
			row = append(row, f.Message)
		}
		rows = append(rows, row)
	}
	header := "POLICY\tKIND\tOBJECT\tFIELD\tPORT\tACTION\tREASON"
	if wide {
		header += "\tMESSAGE"
	}
	if err := table("", header, rows); err != nil {
		return err
	}
	rows = nil
	for _, c := range rep.Conflicts {
		rows = append(rows, []string{shortPolicy(c.Policy), nsName(c.Namespace, c.NetworkPolicy), fmt.Sprintf("spec.ingress[%d]", c.Rule), c.Ports, c.Reason})
	}
	if err := table("NetworkPolicies that re-open protected ports (allow-lists are unions, so they defeat loopguard's):",
		"POLICY\tNETWORKPOLICY\tRULE\tPORTS\tREASON", rows); err != nil {
		return err
	}
	rows = nil
	for _, h := range rep.HostNetworkPods {
		var ps []string
		for _, p := range h.Policies {
			ps = append(ps, shortPolicy(p.reportPolicy))
		}
		rows = append(rows, []string{nsName(h.Namespace, h.Name), orNone(h.Node), strings.Join(ps, ","),
			orNone(strings.Join(h.ProtectedPorts, ",")), orNone(abbreviate(h.NodeMates, 3))})
	}
	if err := table("hostNetwork pods a policy selects (they share the node's loopback; NetworkPolicy does not apply):",
		"POD\tNODE\tPOLICIES\tPROTECTED PORTS\tSHARES LOOPBACK WITH", rows); err != nil {
		return err
	}
	if err := table("Pods that can enter the network namespace of protected pods on their node (and reach their loopback):",
		"POD\tNODE\tPOLICIES\tPROTECTED PODS\tHOW", nodeMateRows(rep)); err != nil {
		return err
	}
	if rt := rep.Runtime; rt != nil {
		if err := table("Protected ports listening beyond loopback, as the node agents saw them (NodeBindReports):",
			"POLICY\tPOD\tNODE\tCONTAINER\tPROCESS\tLISTENING ON\tACTION", runtimeRows(rt)); err != nil {
			return err
		}
		if len(rt.StaleNodes) > 0 {
			fmt.Fprintf(out, "\n%s not checked at runtime: no fresh NodeBindReport from %s.\n",
				plural(rt.PodsUnchecked, "pod"), abbreviate(rt.StaleNodes, 5))
		}
	}
	scope := where
	if namespace == "" {
		scope = plural(s.Namespaces, "namespace")
	}
	scope = fmt.Sprintf("%s in %s against %s", plural(s.Objects, "object"), scope, plural(s.Policies, "policy"))
	if rt := rep.Runtime; rt != nil {
		scope += fmt.Sprintf("; %s checked at runtime", plural(rt.PodsChecked, "pod"))
	}
	if s.Findings+s.Conflicts+s.HostNetworkPods+s.NodeMates+s.RuntimeListeners == 0 {
		_, err := fmt.Fprintf(out, "No loopback-only port is exposed: %s.\n", scope)
		return err
	}
	runtime := ""
	if rep.Runtime != nil {
		runtime = fmt.Sprintf(", %s listening beyond loopback", plural(s.RuntimeListeners, "port"))
	}
	if s.NodeMates > 0 {
		runtime = ", " + plural(s.NodeMates, "node-mate") + runtime
	}
	_, err := fmt.Fprintf(out, "\n%s (%d Deny, %d Warn, %d Audit), %s, %s%s: %s.\n",
		plural(s.Findings, "finding"), s.Deny, s.Warn, s.Audit,
		plural(s.Conflicts, "NetworkPolicy conflict"), plural(s.HostNetworkPods, "hostNetwork pod"), runtime, scope)
	return err
}
