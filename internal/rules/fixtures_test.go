package rules

// Builders for the tests of this package, in the functional-options style of
// cert-manager's test helpers:
//
//	pod("cart-7d9", withLabels("app", "cart"), withContainer("envoy", port(15000)))
//	nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000))
//	service("cart", selector("app", "cart"), servicePort(80, targetPort(15000)))
//
// Every object lives in namespace testNamespace unless an option says
// otherwise.

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
)

const testNamespace = "shop"

// kv turns "k1", "v1", "k2", "v2" into a map.
func kv(pairs ...string) map[string]string {
	if len(pairs)%2 != 0 {
		panic("kv: odd number of arguments")
	}
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

// specOpt mutates a cluster spec; namespaced policies use its embedded
// LoopbackServiceSpec and ignore the namespace selector.
type specOpt func(*v1alpha1.ClusterLoopbackServiceSpec)

// lpOpt mutates one protected port of a policy.
type lpOpt func(*v1alpha1.LoopbackPort)

func podSelector(pairs ...string) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.PodSelector.MatchLabels = kv(pairs...)
	}
}

func podSelectorExpr(key string, op metav1.LabelSelectorOperator, values ...string) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.PodSelector.MatchExpressions = append(s.PodSelector.MatchExpressions,
			metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values})
	}
}

func nsSelector(pairs ...string) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.NamespaceSelector.MatchLabels = kv(pairs...)
	}
}

func nsSelectorExpr(key string, op metav1.LabelSelectorOperator, values ...string) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.NamespaceSelector.MatchExpressions = append(s.NamespaceSelector.MatchExpressions,
			metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values})
	}
}

// protects adds a protected port (TCP by default: the protocol is left
// empty, as in an object read before defaulting).
func protects(p int32, opts ...lpOpt) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		lp := v1alpha1.LoopbackPort{Port: p}
		for _, o := range opts {
			o(&lp)
		}
		s.Ports = append(s.Ports, lp)
	}
}

// through makes the protected port a range.
func through(end int32) lpOpt { return func(lp *v1alpha1.LoopbackPort) { lp.EndPort = &end } }

func lpProtocol(p corev1.Protocol) lpOpt { return func(lp *v1alpha1.LoopbackPort) { lp.Protocol = p } }

func lpName(n string) lpOpt { return func(lp *v1alpha1.LoopbackPort) { lp.Name = n } }

func enforce(a v1alpha1.EnforcementAction) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) { s.EnforcementAction = a }
}

func hostNetworkAction(a v1alpha1.HostNetworkAction) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) { s.HostNetwork = a }
}

func lbs(namespace, name string, opts ...specOpt) *v1alpha1.LoopbackService {
	var spec v1alpha1.ClusterLoopbackServiceSpec
	for _, o := range opts {
		o(&spec)
	}
	return &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + namespace + "-" + name), Generation: 3},
		Spec:       spec.LoopbackServiceSpec,
	}
}

func clbs(name string, opts ...specOpt) *v1alpha1.ClusterLoopbackService {
	var spec v1alpha1.ClusterLoopbackServiceSpec
	for _, o := range opts {
		o(&spec)
	}
	return &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-cluster-" + name), Generation: 7},
		Spec:       spec,
	}
}

// nsPolicy compiles a LoopbackService and fails the test on error.
func nsPolicy(t testing.TB, namespace, name string, opts ...specOpt) *Policy {
	t.Helper()
	p, err := Compile(lbs(namespace, name, opts...))
	if err != nil {
		t.Fatalf("Compile(%s/%s): %v", namespace, name, err)
	}
	return p
}

// clusterPolicy compiles a ClusterLoopbackService and fails the test on
// error.
func clusterPolicy(t testing.TB, name string, opts ...specOpt) *Policy {
	t.Helper()
	p, err := CompileCluster(clbs(name, opts...))
	if err != nil {
		t.Fatalf("CompileCluster(%s): %v", name, err)
	}
	return p
}

// newEnv builds the env of a review in namespace ns, the way the policy
// index does: one set with the namespaced policies and one with the cluster
// policies. nsLabels nil leaves Env.NamespaceLabels nil.
func newEnv(ns string, nsLabels map[string]string, policies ...*Policy) *Env {
	var namespaced, cluster []*Policy
	for _, p := range policies {
		if p.NamespaceSelector == nil {
			namespaced = append(namespaced, p)
		} else {
			cluster = append(cluster, p)
		}
	}
	e := &Env{Namespace: ns, Sets: []*Set{NewSet(namespaced), NewSet(cluster)}}
	if nsLabels != nil {
		e.NamespaceLabels = labels.Set(nsLabels)
	}
	return e
}

// shopEnv is the env of namespace "shop" labelled team=shop, env=prod.
func shopEnv(policies ...*Policy) *Env {
	return newEnv(testNamespace, kv("team", "shop", "env", "prod"), policies...)
}

// ---------------------------------------------------------------------------
// Pods and workloads
// ---------------------------------------------------------------------------

type podOpt func(*corev1.Pod)
type ctrOpt func(*corev1.Container)
type cpOpt func(*corev1.ContainerPort)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// views are pods as the rules judge cluster pods (podview.Of: as they
// are, no trimming), in order.
func views(pods ...*corev1.Pod) []*podview.Pod {
	out := make([]*podview.Pod, len(pods))
	for i, p := range pods {
		out[i] = podview.Of(p)
	}
	return out
}

func inNamespace(ns string) podOpt { return func(p *corev1.Pod) { p.Namespace = ns } }

func generateName(prefix string) podOpt {
	return func(p *corev1.Pod) { p.Name, p.GenerateName = "", prefix }
}

func withLabels(pairs ...string) podOpt {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		for k, v := range kv(pairs...) {
			p.Labels[k] = v
		}
	}
}

func container(name string, opts ...ctrOpt) corev1.Container {
	c := corev1.Container{Name: name, Image: "example.com/" + name}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func withContainer(name string, opts ...ctrOpt) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, container(name, opts...)) }
}

func withInitContainer(name string, opts ...ctrOpt) podOpt {
	return func(p *corev1.Pod) { p.Spec.InitContainers = append(p.Spec.InitContainers, container(name, opts...)) }
}

// withSidecar adds a native sidecar: an init container with restartPolicy
// Always.
func withSidecar(name string, opts ...ctrOpt) podOpt {
	return func(p *corev1.Pod) {
		c := container(name, opts...)
		always := corev1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

func withHostNetwork() podOpt { return func(p *corev1.Pod) { p.Spec.HostNetwork = true } }

func terminating() podOpt {
	return func(p *corev1.Pod) {
		ts := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		p.DeletionTimestamp = &ts
	}
}

func port(n int32, opts ...cpOpt) ctrOpt {
	return func(c *corev1.Container) {
		cp := corev1.ContainerPort{ContainerPort: n}
		for _, o := range opts {
			o(&cp)
		}
		c.Ports = append(c.Ports, cp)
	}
}

func portName(n string) cpOpt { return func(cp *corev1.ContainerPort) { cp.Name = n } }

func portProtocol(p corev1.Protocol) cpOpt { return func(cp *corev1.ContainerPort) { cp.Protocol = p } }

func hostPort(n int32) cpOpt { return func(cp *corev1.ContainerPort) { cp.HostPort = n } }

// podTemplate is the PodTemplate of a Pod, as the webhook gets it.
func podTemplate(t testing.TB, p *corev1.Pod) PodTemplate {
	t.Helper()
	pt, ok := PodTemplateOf(p)
	if !ok {
		t.Fatalf("PodTemplateOf(pod %s): not a pod template", p.Name)
	}
	return pt
}

// template builds a pod template spec from pod options.
func template(opts ...podOpt) corev1.PodTemplateSpec {
	p := pod("", opts...)
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec}
}

func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: testNamespace, Name: name}
}

func deployment(name string, opts ...podOpt) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: objectMeta(name), Spec: appsv1.DeploymentSpec{Template: template(opts...)}}
}

func replicaSet(name string, opts ...podOpt) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: objectMeta(name), Spec: appsv1.ReplicaSetSpec{Template: template(opts...)}}
}

func statefulSet(name string, opts ...podOpt) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: objectMeta(name), Spec: appsv1.StatefulSetSpec{Template: template(opts...)}}
}

func daemonSet(name string, opts ...podOpt) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: objectMeta(name), Spec: appsv1.DaemonSetSpec{Template: template(opts...)}}
}

func job(name string, opts ...podOpt) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: objectMeta(name), Spec: batchv1.JobSpec{Template: template(opts...)}}
}

func cronJob(name string, opts ...podOpt) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: objectMeta(name), Spec: batchv1.CronJobSpec{
		Schedule:    "*/5 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(opts...)}},
	}}
}

func replicationController(name string, opts ...podOpt) *corev1.ReplicationController {
	t := template(opts...)
	return &corev1.ReplicationController{ObjectMeta: objectMeta(name), Spec: corev1.ReplicationControllerSpec{Template: &t}}
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

type svcOpt func(*corev1.Service)
type spOpt func(*corev1.ServicePort)

func service(name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{ObjectMeta: objectMeta(name)}
	for _, o := range opts {
		o(s)
	}
	return s
}

func selector(pairs ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.Selector = kv(pairs...) }
}

func externalName(host string) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeExternalName
		s.Spec.ExternalName = host
	}
}

func servicePort(p int32, opts ...spOpt) svcOpt {
	return func(s *corev1.Service) {
		sp := corev1.ServicePort{Port: p}
		for _, o := range opts {
			o(&sp)
		}
		s.Spec.Ports = append(s.Spec.Ports, sp)
	}
}

func targetPort(n int) spOpt {
	return func(sp *corev1.ServicePort) { sp.TargetPort = intstr.FromInt(n) }
}

func targetPortName(n string) spOpt {
	return func(sp *corev1.ServicePort) { sp.TargetPort = intstr.FromString(n) }
}

func spName(n string) spOpt { return func(sp *corev1.ServicePort) { sp.Name = n } }

func spProtocol(p corev1.Protocol) spOpt { return func(sp *corev1.ServicePort) { sp.Protocol = p } }

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

// wantFinding is what a test expects of one finding. Field, Reason, Action,
// Policies, Container and Related are always compared; Kind and Name when
// set; Port and Protocol when Port is set; Message exactly when set; each
// of Contains must be a substring of the message.
type wantFinding struct {
	Kind, Name string
	Field      string
	Reason     string
	Container  string
	Port       int32
	Protocol   corev1.Protocol
	Action     v1alpha1.EnforcementAction
	Policies   []string
	Related    string
	Message    string
	Contains   []string
	Excludes   []string
}

func refStrings(refs []PolicyRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

func policyNames(ps []*Policy) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Ref.String()
	}
	return out
}

// expectFindings compares findings in order.
func expectFindings(t *testing.T, got []Finding, want []wantFinding) {
	t.Helper()
	if len(got) != len(want) {
		var b strings.Builder
		for _, f := range got {
			b.WriteString("\n\t" + f.Reason + " " + f.Field + ": " + f.Message())
		}
		t.Fatalf("got %d findings, want %d:%s", len(got), len(want), b.String())
	}
	for i, w := range want {
		g := got[i]
		if w.Kind != "" && g.Object.Kind != w.Kind {
			t.Errorf("finding %d: Object.Kind = %q, want %q", i, g.Object.Kind, w.Kind)
		}
		if w.Name != "" && g.Object.Name != w.Name {
			t.Errorf("finding %d: Object.Name = %q, want %q", i, g.Object.Name, w.Name)
		}
		if g.Field != w.Field {
			t.Errorf("finding %d: Field = %q, want %q", i, g.Field, w.Field)
		}
		if g.Reason != w.Reason {
			t.Errorf("finding %d: Reason = %q, want %q", i, g.Reason, w.Reason)
		}
		if g.Container != w.Container {
			t.Errorf("finding %d: Container = %q, want %q", i, g.Container, w.Container)
		}
		if w.Port != 0 && (g.Port != w.Port || g.Protocol != w.Protocol) {
			t.Errorf("finding %d: port = %d/%s, want %d/%s", i, g.Port, g.Protocol, w.Port, w.Protocol)
		}
		if g.Action != w.Action {
			t.Errorf("finding %d: Action = %q, want %q", i, g.Action, w.Action)
		}
		if refs := refStrings(g.Policies); !slices.Equal(refs, w.Policies) {
			t.Errorf("finding %d: Policies = %q, want %q", i, refs, w.Policies)
		}
		if g.Related != w.Related {
			t.Errorf("finding %d: Related = %q, want %q", i, g.Related, w.Related)
		}
		msg := g.Message()
		if w.Message != "" && msg != w.Message {
			t.Errorf("finding %d: Message =\n\t%s\nwant\n\t%s", i, msg, w.Message)
		}
		for _, s := range w.Contains {
			if !strings.Contains(msg, s) {
				t.Errorf("finding %d: Message does not contain %q:\n\t%s", i, s, msg)
			}
		}
		for _, s := range w.Excludes {
			if strings.Contains(msg, s) {
				t.Errorf("finding %d: Message contains %q:\n\t%s", i, s, msg)
			}
		}
	}
}
