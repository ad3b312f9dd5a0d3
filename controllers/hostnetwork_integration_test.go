package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
)

func hostPod(ns, name, node string, labels map[string]string, ports ...int32) *corev1.Pod {
	c := corev1.Container{Name: "main", Image: "registry.invalid/x"}
	for _, p := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p, HostPort: p})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{HostNetwork: true, NodeName: node, Containers: []corev1.Container{c}},
	}
}

// TestHostNetworkReport checks every hostNetwork pod is reported per node,
// with its node-mates, the policies that select it and the protected ports
// it serves on the node, as an OpenReports ClusterReport and as metrics.
func TestHostNetworkReport(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := "hn-" + ns // a node name no other test uses
	// An Audit policy admits what it selects, so the pods exist; the
	// report is about what exists.
	policy := lbs(ns, "agent-admin", v1alpha1.LoopbackPort{Port: 8126})
	policy.Spec.EnforcementAction = v1alpha1.ActionAudit
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	g.Expect(env.Client.Create(ctx, hostPod(ns, "agent", node, map[string]string{"app": "cart"}, 8126))).To(Succeed())
	g.Expect(env.Client.Create(ctx, hostPod(ns, "exporter", node, map[string]string{"app": "node-exporter"}, 9100))).To(Succeed())
	g.Expect(env.Client.Create(ctx, hostPod(ns, "elsewhere", node+"-b", nil))).To(Succeed())

	report := &openreportsv1alpha1.ClusterReport{}
	g.Eventually(func() []openreportsv1alpha1.ReportResult {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "loopguard-hostnetwork-" + node}, report); err != nil {
			return nil
		}
		return report.Results
	}, timeout, poll).Should(HaveLen(2))
	g.Expect(report.Scope).To(HaveField("Name", node))
	g.Expect(report.Summary.Fail).To(Equal(1))
	g.Expect(report.Summary.Warn).To(Equal(1))
	g.Expect(report.Results[0].Subjects[0].Name).To(Equal("agent"))
	g.Expect(report.Results[0].Result).To(BeEquivalentTo("fail"))
	g.Expect(report.Results[0].Properties).To(And(
		HaveKeyWithValue("policies", "LoopbackService "+ns+"/agent-admin"),
		HaveKeyWithValue("protectedPorts", "8126/TCP"),
		HaveKeyWithValue("nodeMates", ns+"/exporter"),
	))
	g.Expect(report.Results[1].Subjects[0].Name).To(Equal("exporter"))
	g.Expect(report.Results[1].Result).To(BeEquivalentTo("warn"))
	g.Expect(report.Results[1].Properties).To(And(HaveKeyWithValue("ports", "9100/TCP"), HaveKeyWithValue("nodeMates", ns+"/agent")))
	g.Expect(report.Results[0].Description).To(ContainSubstring("shares the node's loopback with 1 other hostNetwork pods"))

	g.Expect(testutil.ToFloat64(metrics.HostNetworkPodInfo.WithLabelValues(ns, "agent", node, "true"))).To(Equal(1.0))
	g.Expect(testutil.ToFloat64(metrics.HostNetworkPodInfo.WithLabelValues(ns, "exporter", node, "false"))).To(Equal(1.0))

	// The selected pod also shows in the policy's status.
	g.Eventually(func() []v1alpha1.HostNetworkPod {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.HostNetworkPods
	}, timeout, poll).Should(ConsistOf(v1alpha1.HostNetworkPod{Namespace: ns, Name: "agent", Node: node}))

	// When the last hostNetwork pods leave the node, its report goes.
	g.Expect(env.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Name: "loopguard-hostnetwork-" + node}, report))
	}, timeout, poll).Should(BeTrue())
}
