package cli

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/discover"
)

type discoverOptions struct {
	flags         *genericclioptions.ConfigFlags
	allNamespaces bool
}

func newDiscoverCommand(streams genericiooptions.IOStreams, display string) *cobra.Command {
	o := &discoverOptions{flags: genericclioptions.NewConfigFlags(true)}
	cmd := &cobra.Command{
		Use:   "discover [-n NAMESPACE | -A]",
		Short: "Propose LoopbackServices from what pods really listen on",
		Long: `discover reads what loopguard's node agents observed listening in pods
(NodeBindReport status.discovery, written when the agents run with
--discovery, the chart's agent.discovery.enabled) on ports no policy protects,
and prints:

- one proposed LoopbackService per workload (Deployment, StatefulSet,
  DaemonSet, CronJob; else the Job, ReplicaSet or Pod) and namespace for the
  ports its pods listen on on loopback only (127.0.0.0/8, ::1), with a
  selector from the pod template's labels, contiguous ports merged into
  ranges (port..endPort), the containers and processes as comments, and
  enforcementAction: Audit, so applying them changes nothing before you
  have looked;
- as comments, the ports that listen on a wildcard address (0.0.0.0, ::)
  while no Service and no containerPort declares them: candidates for
  binding to loopback, or doors nobody wrote down.

The output is YAML that kubectl apply takes as it is. Ports an existing
LoopbackService already protects are not proposed again. It needs get and
list on nodebindreports, pods, services, loopbackservices, replicasets,
deployments, statefulsets, daemonsets, jobs and cronjobs.

Exit status: 0, or 2 when the cluster cannot be read.`,
		Example: fmt.Sprintf(`  # Proposals for the current namespace
  %[1]s discover

  # Every namespace, reviewed, then applied (as Audit policies)
  %[1]s discover -A > proposed.yaml && kubectl apply -f proposed.yaml`, display),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ns, err := clusterTarget(o.flags, o.allNamespaces)
			if err != nil {
				return withCode(ExitError, err)
			}
			return runDiscover(cmd.Context(), cfg, ns, streams)
		},
	}
	o.flags.CacheDir = nil
	o.flags.AddFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "propose for every namespace")
	return cmd
}

// runDiscover reads the reports and the namespace's (every namespace's
// when empty) objects, and prints the proposals.
func runDiscover(ctx context.Context, cfg *rest.Config, namespace string, streams genericiooptions.IOStreams) error {
	c, err := client.New(cfg, client.Options{Scheme: auditScheme()})
	if err != nil {
		return withCode(ExitError, fmt.Errorf("failed to create a client: %w", err))
	}
	in, err := readDiscoverInput(ctx, c, namespace)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return withCode(ExitError, errors.New("no loopguard CRDs installed: this cluster does not serve nodebindreports.loopguard.io"))
		}
		return withCode(ExitError, err)
	}
	renderDiscover(streams.Out, namespace, discover.Propose(in), len(in.Reports))
	return nil
}

func readDiscoverInput(ctx context.Context, c client.Reader, namespace string) (discover.Input, error) {
	var in discover.Input
	reports, err := listAll(ctx, c, func() client.ObjectList { return &v1alpha1.NodeBindReportList{} })
	if err != nil {
		return in, fmt.Errorf("failed to list nodebindreports: %w", err)
	}
	var scope []client.ListOption
	if namespace != "" {
		scope = append(scope, client.InNamespace(namespace))
	}
	for _, r := range reports {
		nbr := r.(*v1alpha1.NodeBindReport)
		if namespace != "" && nbr.Status.Discovery != nil {
			d := *nbr.Status.Discovery
			d.Pods = nil
			for _, p := range nbr.Status.Discovery.Pods {
				if p.Namespace == namespace {
					d.Pods = append(d.Pods, p)
				}
			}
			nbr.Status.Discovery = &d
		}
		in.Reports = append(in.Reports, *nbr)
	}
	lists := []struct {
		name string
		new  func() client.ObjectList
		add  func(runtime.Object)
	}{
		{"pods", func() client.ObjectList { return &corev1.PodList{} }, func(o runtime.Object) { in.Pods = append(in.Pods, *o.(*corev1.Pod)) }},
		{"services", func() client.ObjectList { return &corev1.ServiceList{} }, func(o runtime.Object) { in.Services = append(in.Services, *o.(*corev1.Service)) }},
		{"loopbackservices", func() client.ObjectList { return &v1alpha1.LoopbackServiceList{} }, func(o runtime.Object) {
			in.Policies = append(in.Policies, *o.(*v1alpha1.LoopbackService))
		}},
	}
	owner := func(o runtime.Object) { in.Owners = append(in.Owners, o.(client.Object)) }
	for _, l := range []struct {
		name string
		new  func() client.ObjectList
	}{
		{"replicasets", func() client.ObjectList { return &appsv1.ReplicaSetList{} }},
		{"deployments", func() client.ObjectList { return &appsv1.DeploymentList{} }},
		{"statefulsets", func() client.ObjectList { return &appsv1.StatefulSetList{} }},
		{"daemonsets", func() client.ObjectList { return &appsv1.DaemonSetList{} }},
		{"jobs", func() client.ObjectList { return &batchv1.JobList{} }},
		{"cronjobs", func() client.ObjectList { return &batchv1.CronJobList{} }},
	} {
		lists = append(lists, struct {
			name string
			new  func() client.ObjectList
			add  func(runtime.Object)
		}{l.name, l.new, owner})
	}
	for _, l := range lists {
		items, err := listAll(ctx, c, l.new, scope...)
		if err != nil {
			return in, fmt.Errorf("failed to list %s: %w", l.name, err)
		}
		for _, o := range items {
			l.add(o)
		}
	}
	return in, nil
}
