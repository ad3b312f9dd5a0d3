package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
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
			cfg, ns, err := clusterTarget(o.flags, o.allNamespaces)
			if err != nil {
				return withCode(ExitError, err)
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

// clusterState is what audit read; its pods are podview.Pods, as the
// controller's cache holds them (read converts them).
type clusterState struct {
	nsPolicies      map[string][]*rules.Policy
	clusterPolicies []*rules.Policy
	nsLabels        map[string]labels.Set
	pods            map[string][]*podview.Pod
	services        map[string][]*corev1.Service
	netpols         map[string][]*networkingv1.NetworkPolicy
	workloads       map[string][]runtime.Object
	endpointSlices  []*discoveryv1.EndpointSlice
	hostPods        []*podview.Pod
	riskyPods       []*podview.Pod
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

// clusterTarget is the REST config and namespace the kubectl-style flags
// name: "" for every namespace with -A, else -n or the context's namespace.
func clusterTarget(flags *genericclioptions.ConfigFlags, allNamespaces bool) (*rest.Config, string, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil || allNamespaces {
		return cfg, "", err
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	return cfg, ns, err
}
