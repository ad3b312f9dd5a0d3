package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestEveryEditOfAManagedNetworkPolicyIsRepaired: the policy reconcilers
// drop the watch events of their own writes (own_writes.go). Each edit by
// anyone else, including one made right after loopguard's repair of the
// previous edit, must still be repaired at once (the audit interval is an
// hour here): for a LoopbackService's NetworkPolicy and for a cluster
// policy's, which overlap, so that each repair also rewrites the closure
// the other keeps.
func TestEveryEditOfAManagedNetworkPolicyIsRepaired(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("ct-drift-%d", nsSeq.Load()+1)
	ns := namespace(t, map[string]string{label: "yes"})
	policy := lbs(ns, "redis", v1alpha1.LoopbackPort{Port: 6379})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	clbs := clusterLBS(label, map[string]string{label: "yes"}, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })

	want := []string{"TCP:1-6378", "TCP:6380-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}
	names := []string{"loopguard-redis", "loopguard-cluster-" + label}
	ports := func(name string) func() []string {
		return func() []string { return portsOf(managedNP(g, ns, name)) }
	}
	for _, n := range names {
		g.Eventually(ports(n), timeout, poll).Should(Equal(want), n)
	}
	// One at a time: an edit of one brings the other to reconcile too (it
	// overlaps), and that must not be what repairs it.
	for round := range 3 {
		for _, n := range names {
			np := managedNP(g, ns, n)
			g.Expect(env.Client.Patch(ctx, np, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"ingress":[{}]}}`)))).To(Succeed())
			g.Eventually(ports(n), timeout, poll).Should(Equal(want), "round %d: %s was not repaired", round, n)
		}
	}
	g.Expect(eventReasons(ns, "redis")).To(ContainElement("NetworkPolicyRepaired"))
	var reasons []string
	for _, e := range objectEvents("default", clbs.Name) {
		reasons = append(reasons, e.Reason)
	}
	g.Expect(reasons).To(ContainElement("NetworkPolicyRepaired"))
}

// TestDriftWithoutTheHashIsARepair: an edit that also removes the
// spec-hash annotation is repaired and recorded as a repair (a Warning
// naming the NetworkPolicy as the related object), not as a routine
// update.
func TestDriftWithoutTheHashIsARepair(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "hidden", v1alpha1.LoopbackPort{Port: 6379})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	want := []string{"TCP:1-6378", "TCP:6380-65535", "UDP:all", "SCTP:all"}
	ports := func() []string { return portsOf(managedNP(g, ns, "loopguard-hidden")) }
	g.Eventually(ports, timeout, poll).Should(Equal(want))

	np := managedNP(g, ns, "loopguard-hidden")
	patch := `{"metadata":{"annotations":{"loopguard.io/spec-hash":null}},"spec":{"ingress":[{}]}}`
	g.Expect(env.Client.Patch(ctx, np, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	g.Eventually(ports, timeout, poll).Should(Equal(want))
	g.Eventually(func() []string { return eventRelated(ns, "hidden", "NetworkPolicyRepaired") }, timeout, poll).
		Should(ContainElement("NetworkPolicy " + ns + "/loopguard-hidden"))
	g.Expect(eventReasons(ns, "hidden")).NotTo(ContainElement("NetworkPolicyUpdated"))
}

// TestDriftWithAForgedHashIsARepair: a tenant who can edit the managed
// NetworkPolicy can also compute the spec-hash annotation of the spec it
// writes (the hash of public data). Such an edit is repaired and
// recorded as a repair, as any other edit: the manager remembers what it
// wrote, and the annotation counts only for what it wrote before it
// started.
func TestDriftWithAForgedHashIsARepair(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	policy := lbs(ns, "forged", v1alpha1.LoopbackPort{Port: 6379})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	want := []string{"TCP:1-6378", "TCP:6380-65535", "UDP:all", "SCTP:all"}
	ports := func() []string { return portsOf(managedNP(g, ns, "loopguard-forged")) }
	g.Eventually(ports, timeout, poll).Should(Equal(want))

	np := managedNP(g, ns, "loopguard-forged")
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	np.Annotations["loopguard.io/spec-hash"] = forgedHash(g, np.Spec)
	g.Expect(env.Client.Update(ctx, np)).To(Succeed())
	g.Expect(np.Annotations["loopguard.io/spec-hash"]).To(Equal(forgedHash(g, np.Spec)), "the forgery does not match what the API server stored")
	g.Eventually(ports, timeout, poll).Should(Equal(want))
	g.Eventually(func() []string { return eventReasons(ns, "forged") }, timeout, poll).Should(ContainElement("NetworkPolicyRepaired"))
	g.Expect(eventReasons(ns, "forged")).NotTo(ContainElement("NetworkPolicyUpdated"))
}

// forgedHash is the spec-hash annotation as anyone can compute it.
func forgedHash(g Gomega, spec networkingv1.NetworkPolicySpec) string {
	b, err := json.Marshal(spec)
	g.Expect(err).NotTo(HaveOccurred())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
