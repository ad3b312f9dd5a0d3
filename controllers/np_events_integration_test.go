package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestClusterPolicyAnnouncesItsNetworkPoliciesOnce: a cluster policy that
// creates its NetworkPolicy in twelve namespaces in one reconcile says so
// in one Event naming ten of them and counting the rest. One Event per
// NetworkPolicy folded into the first (the recorder's series key leaves
// the note out), which named one namespace.
func TestClusterPolicyAnnouncesItsNetworkPoliciesOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("np-events-%d", nsSeq.Add(1))
	var nss []string
	for range 12 {
		nss = append(nss, namespace(t, map[string]string{label: "on"}))
	}
	// One reconcile must see all twelve: the policy starts with its
	// NetworkPolicies disabled, and they are enabled once the manager's
	// cache holds the last namespace (its index, fed by the same informer
	// in the order of the namespaces' creation, applies the policy there).
	clbs := clusterLBS(label, map[string]string{label: "on"}, v1alpha1.LoopbackPort{Port: 15000})
	clbs.Spec.NetworkPolicy = v1alpha1.NetworkPolicyDisabled
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	g.Eventually(func() bool { return env.Index.Env(nss[len(nss)-1]).Empty() }, timeout, poll).Should(BeFalse())
	g.Expect(env.Change(ctx, clbs, func() { clbs.Spec.NetworkPolicy = v1alpha1.NetworkPolicyManaged })).To(Succeed())
	for _, ns := range nss {
		managedNP(g, ns, "loopguard-cluster-"+label)
	}

	created := func() []string { return eventNotes("default", clbs.Name, "NetworkPolicyCreated") }
	prefix := "created NetworkPolicy loopguard-cluster-" + label + " in 12 namespaces ("
	suffix := " and 2 more) to block ingress to 15000/TCP"
	g.Eventually(created, timeout, poll).Should(ContainElement(And(HavePrefix(prefix), HaveSuffix(suffix))))
	notes := created()
	g.Expect(notes).To(HaveLen(1))
	named := strings.Split(strings.TrimSuffix(strings.TrimPrefix(notes[0], prefix), suffix), ", ")
	g.Expect(named).To(HaveLen(10))
	g.Expect(nss).To(ContainElements(named))
}
