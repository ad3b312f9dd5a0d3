package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
)

// runningPod creates a pod bound to node and marks it Running, as the
// kubelet would.
func runningPod(g Gomega, ns, name, node string, hostNetwork bool) *corev1.Pod {
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: hostNetwork,
			Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app"}}},
	}
	g.Expect(env.Client.Create(ctx, pod)).To(Succeed())
	pod.Status.Phase = corev1.PodRunning
	g.Expect(env.Client.Status().Update(ctx, pod)).To(Succeed())
	return pod
}

// writeReport writes a node's NodeBindReport status as its agent would,
// creating the report first when needed.
func writeReport(g Gomega, node string, scannedAt time.Time, pods ...v1alpha1.PodBindReport) {
	ctx := context.Background()
	rep := &v1alpha1.NodeBindReport{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := env.Client.Create(ctx, rep); err != nil {
		g.Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "create report: %v", err)
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: node}, rep)).To(Succeed())
	}
	checked, beyond := int32(0), int32(0)
	for _, p := range pods {
		if p.Unchecked == "" {
			checked++
		}
		if len(p.Listeners) > 0 {
			beyond++
		}
	}
	rep.Status = v1alpha1.NodeBindReportStatus{
		ScannedAt: ptr.To(metav1.NewTime(scannedAt)), ScanInterval: &metav1.Duration{Duration: time.Minute},
		PodsChecked: checked, PodsBeyondLoopback: beyond, Pods: pods,
	}
	g.Expect(env.Client.Status().Update(ctx, rep)).To(Succeed())
}

func podReport(pod *corev1.Pod, listeners ...v1alpha1.BindListener) v1alpha1.PodBindReport {
	return v1alpha1.PodBindReport{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, HostNetwork: pod.Spec.HostNetwork, Listeners: listeners}
}

func tcp(addr string, port int32) v1alpha1.BindListener {
	return v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: addr, Port: port, Container: "app", Process: "listener", PID: 4242}
}

// runtimeEvents returns the notes of the policy's ListeningBeyondLoopback
// Events.
func runtimeEvents(ns, policy string) []string {
	var out []string
	for _, e := range objectEvents(ns, policy) {
		if e.Reason == v1alpha1.ReasonListeningBeyondLoopback {
			out = append(out, e.Note)
		}
	}
	return out
}

// TestRuntimeFindings writes a NodeBindReport as an agent would and checks
// the policy's status.runtime, its Compliant condition, one Event per
// finding, the metric, that rescans with nothing new write nothing, and
// that the fix clears it all.
func TestRuntimeFindings(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000}, v1alpha1.LoopbackPort{Port: 9901, Protocol: corev1.ProtocolUDP})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	cart := runningPod(g, ns, "cart-1", node, false)
	clean := runningPod(g, ns, "cart-2", node, false)
	runningPod(g, ns, "cart-3", node, false) // not in the report yet: unchecked

	writeReport(g, node, time.Now(),
		podReport(cart, tcp("0.0.0.0", 15000), tcp("0.0.0.0", 8080), // 8080 is not protected
			v1alpha1.BindListener{Protocol: corev1.ProtocolUDP, Address: "10.244.0.7", Port: 9901}),
		podReport(clean))

	compliant := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionCompliant)
	g.Eventually(compliant, timeout, poll).Should(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback),
		HaveField("Message", ContainSubstring("pod "+ns+"/cart-1 listens on 0.0.0.0:15000/TCP beyond loopback (container app, process listener, node "+node+")"))))
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{
		PodsChecked: 2, PodsUnchecked: 1, PodsBeyondLoopback: 1,
		Listeners: []v1alpha1.RuntimeListener{
			{Namespace: ns, Pod: "cart-1", Node: node, Container: "app", Process: "listener", Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000},
			{Namespace: ns, Pod: "cart-1", Node: node, Protocol: corev1.ProtocolUDP, Address: "10.244.0.7", Port: 9901},
		},
	}))
	// One Event for the pod, naming both addresses.
	g.Eventually(func() []string { return runtimeEvents(ns, "envoy") }, timeout, poll).Should(ConsistOf(And(
		ContainSubstring("pod "+ns+"/cart-1 listens on 0.0.0.0:15000/TCP beyond loopback"),
		ContainSubstring("pod "+ns+"/cart-1 listens on 10.244.0.7:9901/UDP beyond loopback"),
	)))
	g.Expect(policyGauge(t, "loopguard_runtime_pods_beyond_loopback", "LoopbackService", ns, "envoy")).To(BeEquivalentTo(1))

	// Rescans that find the same write nothing and announce nothing again.
	// Each check waits for the NodeBindReport controller to have reconciled the
	// rescan (it hands the policies only the pods whose listeners changed).
	// scannedAt moves by whole seconds (its resolution), else the rescan is the
	// same object, no write and no event.
	// The registration controller's Enforced condition is the last write
	// that is not the rescans': wait for it, else it lands in the loop.
	g.Eventually(condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionEnforced), timeout, poll).
		ShouldNot(BeNil())
	rv := policy.ResourceVersion
	for i := range 3 {
		before := reconciles(g, controllers.NodeBindReportControllerName)
		writeReport(g, node, time.Now().Add(time.Duration(i+1)*time.Second),
			podReport(cart, tcp("0.0.0.0", 15000), tcp("0.0.0.0", 8080),
				v1alpha1.BindListener{Protocol: corev1.ProtocolUDP, Address: "10.244.0.7", Port: 9901}),
			podReport(clean))
		g.Eventually(func() float64 { return reconciles(g, controllers.NodeBindReportControllerName) }, timeout, poll).
			Should(BeNumerically(">", before), "no reconcile ran after the rescan")
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		g.Expect(policy.ResourceVersion).To(Equal(rv), "a rescan that found the same wrote the policy")
	}
	g.Expect(runtimeEvents(ns, "envoy")).To(HaveLen(1))

	// The fix: the process binds to loopback, which the agent does not
	// report.
	writeReport(g, node, time.Now(), podReport(cart), podReport(clean))
	g.Eventually(compliant, timeout, poll).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{PodsChecked: 2, PodsUnchecked: 1}))
	g.Expect(policyGaugeExported(t, "loopguard_runtime_pods_beyond_loopback", "LoopbackService", ns, "envoy")()).To(BeTrue())
	g.Expect(policyGauge(t, "loopguard_runtime_pods_beyond_loopback", "LoopbackService", ns, "envoy")).To(BeEquivalentTo(0))
}

// TestRuntimeReportsNotBelieved checks what a policy does not take from a
// report: a stale one (its pods are unchecked and its node listed), and an
// entry about a pod of another node (a report speaks for its node only).
func TestRuntimeReportsNotBelieved(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	onA := runningPod(g, ns, "on-a", ns+"-a", false)
	onB := runningPod(g, ns, "on-b", ns+"-b", false)

	// Node a's report is three hours old; node b's report speaks of node
	// a's pod as well as its own.
	writeReport(g, ns+"-a", time.Now().Add(-3*time.Hour), podReport(onA, tcp("0.0.0.0", 15000)))
	writeReport(g, ns+"-b", time.Now(), podReport(onB), podReport(onA, tcp("0.0.0.0", 15000)))

	g.Eventually(func() *v1alpha1.RuntimeStatus {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.Runtime
	}, timeout, poll).Should(Equal(&v1alpha1.RuntimeStatus{PodsChecked: 1, PodsUnchecked: 1, StaleNodes: []string{ns + "-a"}}))
	compliant := condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionCompliant)
	g.Expect(compliant()).To(HaveField("Status", metav1.ConditionTrue))

	// A fresh scan of node a counts.
	writeReport(g, ns+"-a", time.Now(), podReport(onA, tcp("::", 15000)))
	g.Eventually(compliant, timeout, poll).Should(And(HaveField("Reason", v1alpha1.ReasonListeningBeyondLoopback),
		HaveField("Message", ContainSubstring("listens on [::]:15000/TCP beyond loopback"))))
}

// TestRuntimeHostNetworkOnNode checks a hostNetwork pod's finding is
// reported against its node too, in the node's hostNetwork ClusterReport.
func TestRuntimeHostNetworkOnNode(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	policy := lbs(ns, "agent", v1alpha1.LoopbackPort{Port: 15000})
	policy.Spec.HostNetwork = v1alpha1.HostNetworkAudit
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	g.Eventually(condition(g, policy, func() []metav1.Condition { return policy.Status.Conditions }, v1alpha1.ConditionReady), timeout, poll).
		Should(HaveField("Status", metav1.ConditionTrue))
	pod := runningPod(g, ns, "node-agent", node, true)
	writeReport(g, node, time.Now(), podReport(pod, tcp("10.245.0.1", 15000)))

	report := &openreportsv1alpha1.ClusterReport{}
	g.Eventually(func() []string {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "loopguard-hostnetwork-" + node}, report); err != nil {
			return nil
		}
		var rules []string
		for _, r := range report.Results {
			rules = append(rules, r.Rule+"/"+string(r.Result))
		}
		return rules
	}, timeout, poll).Should(ContainElement("listening-beyond-loopback/fail"))
	for _, r := range report.Results {
		if r.Rule == "listening-beyond-loopback" {
			g.Expect(r.Description).To(ContainSubstring("pod " + ns + "/node-agent listens on 10.245.0.1:15000/TCP beyond loopback"))
			g.Expect(r.Properties).To(HaveKeyWithValue("listeners", "10.245.0.1:15000/TCP"))
		}
	}
	g.Eventually(func() []v1alpha1.RuntimeListener {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		if policy.Status.Runtime == nil {
			return nil
		}
		return policy.Status.Runtime.Listeners
	}, timeout, poll).Should(ConsistOf(HaveField("HostNetwork", true)))
}

// TestRuntimeClusterPolicy checks a ClusterLoopbackService gets the
// findings of the pods it selects across namespaces, mapped from the
// report through the policy index.
func TestRuntimeClusterPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a := namespace(t, map[string]string{"ct-runtime": "yes"})
	b := namespace(t, map[string]string{"ct-runtime": "yes"})
	node := a + "-node"
	clbs := clusterLBS("runtime-agents", map[string]string{"ct-runtime": "yes"}, v1alpha1.LoopbackPort{Port: 8126})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	g.Eventually(condition(g, clbs, func() []metav1.Condition { return clbs.Status.Conditions }, v1alpha1.ConditionReady), timeout, poll).
		Should(HaveField("Status", metav1.ConditionTrue))
	inA, inB := runningPod(g, a, "agent", node, false), runningPod(g, b, "agent", node, false)
	writeReport(g, node, time.Now(), podReport(inA, tcp("0.0.0.0", 8126)), podReport(inB, tcp("10.244.0.3", 8126)))

	g.Eventually(func() *v1alpha1.RuntimeStatus {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		return clbs.Status.Runtime
	}, timeout, poll).Should(And(
		HaveField("PodsChecked", BeEquivalentTo(2)), HaveField("PodsBeyondLoopback", BeEquivalentTo(2)),
		HaveField("Listeners", ConsistOf(HaveField("Namespace", a), HaveField("Namespace", b)))))
	g.Expect(policyGauge(t, "loopguard_runtime_pods_beyond_loopback", "ClusterLoopbackService", "", "runtime-agents")).To(BeEquivalentTo(2))
}

// TestRuntimeReportGoesStale checks that a report nobody rewrites stops
// counting once its scans are overdue, with no write to announce it: the
// report controller wakes up when the report goes stale.
func TestRuntimeReportGoesStale(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	pod := runningPod(g, ns, "cart", node, false)

	// Scans every second, rewritten at least every second: stale 3s after
	// the scan. The report has its status before the policy exists: a
	// report without one is stale from the start, and a reconcile that
	// saw it so would satisfy the end state below before the fresh one.
	rep := &v1alpha1.NodeBindReport{ObjectMeta: metav1.ObjectMeta{Name: node}}
	g.Expect(env.Client.Create(ctx, rep)).To(Succeed())
	rep.Status = v1alpha1.NodeBindReportStatus{
		ScannedAt: ptr.To(metav1.Now()), ScanInterval: &metav1.Duration{Duration: time.Second},
		RefreshInterval: &metav1.Duration{Duration: time.Second},
		PodsChecked:     1, PodsBeyondLoopback: 1, Pods: []v1alpha1.PodBindReport{podReport(pod, tcp("0.0.0.0", 15000))},
	}
	g.Expect(env.Client.Status().Update(ctx, rep)).To(Succeed())
	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())

	// Seen fresh first (Compliant False), unless the machine is so slow
	// that it is stale by the first reconcile; either way it ends stale,
	// with nothing but the report's age to wake the controller.
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		g.Expect(policy.Status.Runtime).To(Equal(&v1alpha1.RuntimeStatus{PodsUnchecked: 1, StaleNodes: []string{node}}))
		g.Expect(meta.FindStatusCondition(policy.Status.Conditions, v1alpha1.ConditionCompliant)).To(HaveField("Status", metav1.ConditionTrue))
	}, timeout, poll).Should(Succeed())
}
