package controllers_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
)

// TestSquattedNetworkPolicyName: a NetworkPolicy of the managed name that
// the policy does not control, in one namespace, is neither adopted nor
// rewritten; the policy is enforced and audited in the other namespaces,
// and the squatted one is named in the conditions and an Event. Once the
// squatter's object goes, the policy recovers.
func TestSquattedNetworkPolicyName(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	sel := map[string]string{"ct-squat": "yes"}
	squatted := namespace(t, sel)
	other := namespace(t, sel)
	unowned := namespace(t, sel)
	const npName = "loopguard-cluster-squat"

	// One squat controlled by another object, one without any owner.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: squatted}}
	g.Expect(env.Client.Create(ctx, cm)).To(Succeed())
	allowAll := networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}
	squat := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: npName, Namespace: squatted,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "mine", UID: cm.UID, Controller: ptr.To(true)}}},
		Spec: allowAll}
	g.Expect(env.Client.Create(ctx, squat)).To(Succeed())
	users := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: npName, Namespace: unowned}, Spec: allowAll}
	g.Expect(env.Client.Create(ctx, users)).To(Succeed())
	for _, ns := range []string{squatted, other, unowned} {
		g.Expect(env.Client.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "exposed", Namespace: ns, Labels: map[string]string{"app": "cart"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/x",
				Ports: []corev1.ContainerPort{{ContainerPort: 8126}}}}},
		})).To(Succeed())
	}

	clbs := clusterLBS("squat", sel, v1alpha1.LoopbackPort{Port: 8126})
	clbs.Spec.EnforcementAction = v1alpha1.ActionAudit
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })

	np := managedNP(g, other, npName)
	g.Expect(metav1.IsControlledBy(np, clbs)).To(BeTrue())
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		st := clbs.Status
		g.Expect(st.NetworkPolicies).To(Equal([]string{other + "/" + npName}))
		var audited []string
		for _, v := range st.Violations {
			audited = append(audited, v.Namespace)
		}
		g.Expect(audited).To(ConsistOf(squatted, other, unowned))
		eff := findCondition(st.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
		g.Expect(eff).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonNetworkPolicyNameTaken)))
		g.Expect(eff.Message).To(And(ContainSubstring(squatted+"/"+npName), ContainSubstring(unowned+"/"+npName), ContainSubstring("2 namespaces")))
		ready := findCondition(st.Conditions, v1alpha1.ConditionReady)
		g.Expect(ready).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonPartiallyReconciled)))
		g.Expect(ready.Message).To(And(ContainSubstring("enforced in 1 of 3 namespaces"), ContainSubstring("exists and is not owned by this policy; rename or delete it")))
	}, timeout, poll).Should(Succeed())
	g.Eventually(func() string {
		var notes []string
		for _, e := range objectEvents("default", "squat") {
			if e.Reason == v1alpha1.ReasonNetworkPolicyNameTaken {
				notes = append(notes, e.Note)
			}
		}
		return strings.Join(notes, "\n")
	}, timeout, poll).Should(And(ContainSubstring(squatted+"/"+npName), ContainSubstring(unowned+"/"+npName)))

	// Neither squat was taken over or rewritten.
	for _, key := range []client.ObjectKey{client.ObjectKeyFromObject(squat), client.ObjectKeyFromObject(users)} {
		got := &networkingv1.NetworkPolicy{}
		g.Expect(env.Client.Get(ctx, key, got)).To(Succeed())
		g.Expect(metav1.IsControlledBy(got, clbs)).To(BeFalse(), "%s adopted", key)
		g.Expect(got.Spec.Ingress).To(HaveLen(1))
		g.Expect(got.Spec.Ingress[0].Ports).To(BeEmpty(), "%s rewritten", key)
		g.Expect(got.Labels).To(BeEmpty(), "%s relabelled", key)
	}

	// The squatters leave; the policy takes the names and is Ready again.
	g.Expect(env.Client.Delete(ctx, squat)).To(Succeed())
	g.Expect(env.Client.Delete(ctx, users)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		g.Expect(clbs.Status.NetworkPolicies).To(ConsistOf(squatted+"/"+npName, other+"/"+npName, unowned+"/"+npName))
		g.Expect(findCondition(clbs.Status.Conditions, v1alpha1.ConditionReady)).To(HaveField("Status", metav1.ConditionTrue))
		g.Expect(findCondition(clbs.Status.Conditions, v1alpha1.ConditionNetworkPolicyEffective)).To(HaveField("Status", metav1.ConditionTrue))
	}, timeout*3, poll).Should(Succeed())
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// TestNodeMates: pods that can enter other pods' network namespaces on the
// node of a selected pod are reported in the policy's status (with their
// reasons), an Event, a metric and the node's ClusterReport; pods on
// another node, or harmless ones, are not.
func TestNodeMates(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	tools := namespace(t, nil) // node-mates may be in any namespace
	node := "nm-" + ns

	policy := lbs(ns, "cart-admin", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	mk := func(ns, name, node string, f func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/x"}}}}
		if f != nil {
			f(p)
		}
		g.Expect(env.Client.Create(ctx, p)).To(Succeed())
		return p
	}
	mk(ns, "cart-0", node, func(p *corev1.Pod) { p.Labels = map[string]string{"app": "cart"} })
	privileged := func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	}
	mk(tools, "debug", node, privileged)
	mk(tools, "tracer", node, func(p *corev1.Pod) {
		p.Spec.HostPID = true
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}
	})
	mk(tools, "harmless", node, nil)
	mk(tools, "elsewhere", node+"-b", privileged)

	want := []v1alpha1.NodeMate{
		{Namespace: tools, Name: "debug", Node: node, Reasons: []string{"privileged container main"}},
		{Namespace: tools, Name: "tracer", Node: node, Reasons: []string{"hostPID and SYS_PTRACE in container main"}},
	}
	g.Eventually(func() []v1alpha1.NodeMate {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.NodeMates
	}, timeout, poll).Should(Equal(want))
	g.Expect(policy.Status.NodeMateCount).To(HaveValue(BeEquivalentTo(2)))
	g.Eventually(func() []string {
		var notes []string
		for _, e := range objectEvents(ns, "cart-admin") {
			if e.Reason == v1alpha1.ReasonNodeMate {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}, timeout, poll).Should(ConsistOf(ContainSubstring(tools+"/debug"), ContainSubstring(tools+"/tracer")))
	g.Expect(policyGauge(t, "loopguard_node_mate_pods", "LoopbackService", ns, "cart-admin")).To(Equal(2.0))

	report := &openreportsv1alpha1.ClusterReport{}
	g.Eventually(func() []string {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "loopguard-hostnetwork-" + node}, report); err != nil {
			return nil
		}
		var out []string
		for _, r := range report.Results {
			out = append(out, r.Rule+" "+r.Subjects[0].Name+" "+r.Properties["reasons"]+" "+r.Properties["protectedPods"])
		}
		return out
	}, timeout, poll).Should(ConsistOf(
		"node-mate debug Privileged "+ns+"/cart-0",
		"node-mate tracer HostPIDCapability "+ns+"/cart-0",
	))
	g.Expect(report.Summary.Fail).To(Equal(2))
	g.Expect(testutil.ToFloat64(metrics.NodeMatePodInfo.WithLabelValues(tools, "debug", node))).To(Equal(1.0))

	// A new one appearing later reaches the policy through the pod watch.
	mk(tools, "procfs", node, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "proc", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/proc"}}}}
	})
	g.Eventually(func() []string {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		var out []string
		for _, m := range policy.Status.NodeMates {
			out = append(out, m.Name+": "+strings.Join(m.Reasons, "; "))
		}
		return out
	}, timeout, poll).Should(ContainElement("procfs: hostPath /proc (volume proc)"))

	// The protected pod leaves the node: no node-mate is left to report.
	g.Expect(env.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-0", Namespace: ns}}, client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(func() []v1alpha1.NodeMate {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		return policy.Status.NodeMates
	}, timeout, poll).Should(BeEmpty())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Name: "loopguard-hostnetwork-" + node}, report))
	}, timeout, poll).Should(BeTrue())
}

// TestNameTakenByALoopbackServiceSaysSo: a tenant's LoopbackService named
// cluster-<x> gets the managed name of ClusterLoopbackService <x> in its
// namespace. Deleting that NetworkPolicy (the usual advice) would not
// help: the LoopbackService recreates it. The cluster policy's Ready
// condition and Event must say which LoopbackService holds the name.
func TestNameTakenByALoopbackServiceSaysSo(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	sel := map[string]string{"loopguard-test/taken-by-lbs": strconv.FormatInt(time.Now().UnixNano(), 36)}
	ns := namespace(t, sel)
	clbsName := "taken-" + sel["loopguard-test/taken-by-lbs"]
	tenant := lbs(ns, "cluster-"+clbsName, v1alpha1.LoopbackPort{Port: 9901})
	g.Expect(env.Client.Create(ctx, tenant)).To(Succeed())
	npName := "loopguard-cluster-" + clbsName
	g.Expect(metav1.IsControlledBy(managedNP(g, ns, npName), tenant)).To(BeTrue())

	clbs := clusterLBS(clbsName, sel, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	want := fmt.Sprintf("it is the managed NetworkPolicy of LoopbackService %s/%s, which recreates it if it is deleted; rename or delete that LoopbackService", ns, tenant.Name)
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		ready := findCondition(clbs.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Message).To(ContainSubstring(want))
	}, timeout, poll).Should(Succeed())
	g.Eventually(func() string {
		var notes []string
		for _, e := range objectEvents("default", clbsName) {
			if e.Reason == v1alpha1.ReasonNetworkPolicyNameTaken {
				notes = append(notes, e.Note)
			}
		}
		return strings.Join(notes, "\n")
	}, timeout, poll).Should(ContainSubstring(want))
}

// TestClusterPolicyNodeMateLater: a pod that can enter a selected pod's
// network namespace, created in an unselected namespace once the cluster
// policy's node-mates are known (and kept, nodeMateMemo), shows in its
// status; so does its leaving.
func TestClusterPolicyNodeMateLater(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("nm-later-%d", nsSeq.Add(1))
	ns := namespace(t, map[string]string{label: "on"})
	tools := namespace(t, nil)
	node := "nm-" + ns
	g.Expect(env.Client.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-0", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/x"}}}})).To(Succeed())
	clbs := clusterLBS(label, map[string]string{label: "on"}, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	mates := func() []string {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(clbs), clbs)).To(Succeed())
		if clbs.Status.MatchedPods == nil || *clbs.Status.MatchedPods != 1 {
			return []string{"not yet audited"}
		}
		var out []string
		for _, m := range clbs.Status.NodeMates {
			out = append(out, m.Namespace+"/"+m.Name)
		}
		return out
	}
	g.Eventually(mates, timeout, poll).Should(BeEmpty())

	debug := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "debug", Namespace: tools},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/x",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}}
	g.Expect(env.Client.Create(ctx, debug)).To(Succeed())
	g.Eventually(mates, timeout, poll).Should(Equal([]string{tools + "/debug"}))
	g.Expect(env.Client.Delete(ctx, debug, client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(mates, timeout, poll).Should(BeEmpty())
}
