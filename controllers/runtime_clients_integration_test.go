package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// clientsReport is a pod's entry of a NodeBindReport with the clients the
// agent sampled and nothing listening beyond loopback.
func clientsReport(pod *corev1.Pod, clients ...v1alpha1.BindClient) v1alpha1.PodBindReport {
	r := podReport(pod)
	r.Clients = clients
	return r
}

// clientEvents returns the notes of the policy's UnexpectedClient Events.
func clientEvents(ns, policy string) []string {
	var out []string
	for _, e := range objectEvents(ns, policy) {
		if e.Reason == v1alpha1.ReasonUnexpectedClient {
			out = append(out, e.Note)
		}
	}
	return out
}

// TestRuntimeUnexpectedClients writes NodeBindReports with sampled clients
// as an agent would and follows the policy's view of them: a client from
// an allowed container is no finding; one from another container, and one
// from outside the pod's containers, are (status.runtime, RuntimeVerified
// and Compliant, one Event per distinct client, the gauge); the clients
// gone, the findings go.
func TestRuntimeUnexpectedClients(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000, Clients: []string{"app"}})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	pod := runningPod(g, ns, "cart-1", node, false)
	verified := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionRuntimeVerified)
	compliant := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionCompliant)
	gauge := func() float64 {
		return policyGauge(t, "loopguard_runtime_unexpected_clients", "LoopbackService", ns, "envoy")
	}
	app := v1alpha1.BindClient{Port: 15000, Container: "app", Process: "curl"}
	debug := v1alpha1.BindClient{Port: 15000, Container: "debug", Process: "nc"}
	outside := v1alpha1.BindClient{Port: 15000, Outside: true, Process: "containerd"}

	// The allowed container: the pod is checked and verified, no finding.
	writeReport(g, node, time.Now(), clientsReport(pod, app))
	g.Eventually(verified, timeout, poll).Should(And(HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", v1alpha1.ReasonNotListeningBeyondLoopback)))
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{PodsChecked: 1}))
	g.Eventually(policyGaugeExported(t, "loopguard_runtime_unexpected_clients", "LoopbackService", ns, "envoy"), timeout, poll).Should(BeTrue())
	g.Expect(gauge()).To(BeZero())
	g.Expect(clientEvents(ns, "envoy")).To(BeEmpty())

	// Another container: a finding in status.runtime, both conditions, an
	// Event and the gauge.
	writeReport(g, node, time.Now(), clientsReport(pod, app, debug))
	g.Eventually(compliant, timeout, poll).Should(And(HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", v1alpha1.ReasonUnexpectedClient)))
	debugMsg := `port 15000/TCP: container "debug" (nc) is connected on loopback, but spec.ports[0].clients lists only ["app"]`
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{
		PodsChecked: 1, UnexpectedClientCount: 1,
		UnexpectedClients: []v1alpha1.RuntimeClient{{Namespace: ns, Pod: "cart-1", Node: node, Port: 15000,
			Container: "debug", Process: "nc", Field: "spec.ports[0].clients", Message: debugMsg}},
	}))
	g.Expect(verified()).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonUnexpectedClient),
		HaveField("Message", Equal("1 unexpected client is connected to a protected port on loopback: pod "+ns+"/cart-1 on node "+node+", "+debugMsg))))
	g.Eventually(func() []string { return clientEvents(ns, "envoy") }, timeout, poll).Should(ConsistOf(
		"pod " + ns + "/cart-1 on node " + node + ", " + debugMsg))
	g.Expect(gauge()).To(BeEquivalentTo(1))

	// From outside the pod's containers (a port-forward): a second finding
	// and a second Event; the first is not announced again.
	writeReport(g, node, time.Now(), clientsReport(pod, app, debug, outside))
	outsideMsg := "port 15000/TCP: containerd outside the pod's containers is connected on loopback (a port-forward or a process of the node)"
	g.Eventually(func() *v1alpha1.RuntimeStatus {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.Runtime
	}, timeout, poll).Should(Equal(&v1alpha1.RuntimeStatus{
		PodsChecked: 1, UnexpectedClientCount: 2,
		UnexpectedClients: []v1alpha1.RuntimeClient{
			{Namespace: ns, Pod: "cart-1", Node: node, Port: 15000, Container: "debug", Process: "nc", Field: "spec.ports[0].clients", Message: debugMsg},
			{Namespace: ns, Pod: "cart-1", Node: node, Port: 15000, Outside: true, Process: "containerd", Field: "spec.ports[0].clients", Message: outsideMsg},
		},
	}))
	g.Expect(verified()).To(HaveField("Message", HavePrefix("2 unexpected clients are connected to protected ports on loopback; the first: pod "+ns+"/cart-1")))
	g.Eventually(func() []string { return clientEvents(ns, "envoy") }, timeout, poll).Should(ConsistOf(
		"pod "+ns+"/cart-1 on node "+node+", "+debugMsg,
		"pod "+ns+"/cart-1 on node "+node+", "+outsideMsg))
	g.Expect(gauge()).To(BeEquivalentTo(2))

	// The clients gone: the findings go.
	writeReport(g, node, time.Now(), clientsReport(pod, app))
	g.Eventually(verified, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{PodsChecked: 1}))
	g.Eventually(compliant, timeout, poll).Should(HaveField("Reason", v1alpha1.ReasonNoViolations))
	g.Eventually(policyGaugeExported(t, "loopguard_runtime_unexpected_clients", "LoopbackService", ns, "envoy"), timeout, poll).Should(BeTrue())
	g.Expect(gauge()).To(BeZero())
	g.Expect(clientEvents(ns, "envoy")).To(HaveLen(2))
}
