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
// in one Event naming ten of them and counting the rest, not in twelve
// (at 150,000 pods those Events were a third of the API writes).
func TestClusterPolicyAnnouncesItsNetworkPoliciesOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("np-events-%d", nsSeq.Add(1))
	var nss []string
	for range 12 {
		nss = append(nss, namespace(t, map[string]string{label: "on"}))
	}
	clbs := clusterLBS(label, map[string]string{label: "on"}, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	for _, ns := range nss {
		managedNP(g, ns, "loopguard-cluster-"+label)
	}

	created := func() []string {
		var notes []string
		for _, e := range objectEvents("default", clbs.Name) {
			if e.Reason == "NetworkPolicyCreated" {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}
	prefix := "created NetworkPolicy loopguard-cluster-" + label + " in 12 namespaces ("
	suffix := " and 2 more) to block ingress to 15000/TCP"
	g.Eventually(created, timeout, poll).Should(ContainElement(And(HavePrefix(prefix), HaveSuffix(suffix))))
	notes := created()
	g.Expect(notes).To(HaveLen(1))
	named := strings.Split(strings.TrimSuffix(strings.TrimPrefix(notes[0], prefix), suffix), ", ")
	g.Expect(named).To(HaveLen(10))
	g.Expect(nss).To(ContainElements(named))
}
