// Package noreports runs the manager on an API server without the
// OpenReports CRDs: the Report controller reconciles without error and
// writes nothing, and the policies are enforced as ever; once the CRDs are
// installed, the Reports appear without any other change.
package noreports

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Manager: true}, &env) }

// counter sums a controller-runtime counter of the named controller (the
// manager runs in this process).
func counter(g Gomega, name, controller string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var n float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func TestWithoutOpenReportsCRDs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, err := env.Client.RESTMapper().RESTMapping(schema.GroupKind{Group: "openreports.io", Kind: "Report"}, "v1alpha1")
	g.Expect(meta.IsNoMatchError(err)).To(BeTrue(), "the OpenReports CRDs are installed: %v", err)

	ns := "noreports"
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "registry.invalid/envoy",
			Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}},
	})).To(Succeed())
	// A hostNetwork pod: its node's ClusterReport.
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns, Labels: map[string]string{"app": "agent"}},
		Spec:       corev1.PodSpec{HostNetwork: true, NodeName: "noreports-node", Containers: []corev1.Container{{Name: "agent", Image: "registry.invalid/agent"}}},
	})).To(Succeed())
	before := counter(g, "controller_runtime_reconcile_total", controllers.OpenReportsControllerName)
	nodesBefore := counter(g, "controller_runtime_reconcile_total", controllers.HostNetworkControllerName)
	policy := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "envoy-admin", Namespace: ns},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
		},
	}
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	// The policy is audited as ever...
	g.Eventually(func() *int32 {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.ViolationCount
	}, 20*time.Second, 50*time.Millisecond).Should(HaveValue(BeEquivalentTo(1)))
	// ...and the Report controller ran for the namespace, without error.
	g.Eventually(func() float64 {
		return counter(g, "controller_runtime_reconcile_total", controllers.OpenReportsControllerName)
	}, 20*time.Second, 50*time.Millisecond).Should(BeNumerically(">", before))
	g.Expect(counter(g, "controller_runtime_reconcile_errors_total", controllers.OpenReportsControllerName)).To(BeZero())
	g.Eventually(func() float64 {
		return counter(g, "controller_runtime_reconcile_total", controllers.HostNetworkControllerName)
	}, 20*time.Second, 50*time.Millisecond).Should(BeNumerically(">", nodesBefore))
	g.Expect(counter(g, "controller_runtime_reconcile_errors_total", controllers.HostNetworkControllerName)).To(BeZero())

	// Installing the CRDs: the namespace's Report appears (the manager
	// looks every 30s), though nothing in the namespace changed.
	dir, err := testenv.OpenReportsCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{dir}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() []string {
		rep := &openreportsv1alpha1.Report{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: controllers.ReportName}, rep); err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, r := range rep.Results {
			out = append(out, string(r.Result)+" "+r.Rule+" "+r.Subjects[0].Name)
		}
		return out
	}, 2*time.Minute, 200*time.Millisecond).Should(ContainElement("fail container-port cart"))
	// And the node's ClusterReport, from the hostNetwork controller's own
	// look at the API.
	g.Eventually(func() error {
		return env.Client.Get(ctx, client.ObjectKey{Name: "loopguard-hostnetwork-noreports-node"}, &openreportsv1alpha1.ClusterReport{})
	}, 2*time.Minute, 200*time.Millisecond).Should(Succeed())
}
