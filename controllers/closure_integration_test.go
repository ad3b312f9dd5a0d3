package controllers_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestClusterPolicyClosesALoopbackServicesPorts: a LoopbackService that
// comes, changes or goes changes what an overlapping cluster policy's
// NetworkPolicy keeps closed in its namespace (the closure request,
// closure.go), and only there; both policies report their NetworkPolicies
// effective once each closes the other's ports.
func TestClusterPolicyClosesALoopbackServicesPorts(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	label := fmt.Sprintf("ct-closure-%d", nsSeq.Load()+1)
	a := namespace(t, map[string]string{label: "yes"})
	b := namespace(t, map[string]string{label: "yes"})
	clbs := clusterLBS(label, map[string]string{label: "yes"}, v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	np := "loopguard-cluster-" + label
	ports := func(ns string) func() []string {
		return func() []string { return portsOf(managedNP(g, ns, np)) }
	}
	alone := []string{"TCP:1-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}
	g.Eventually(ports(a), timeout, poll).Should(Equal(alone))
	g.Eventually(ports(b), timeout, poll).Should(Equal(alone))

	redis := lbs(a, "redis", v1alpha1.LoopbackPort{Port: 6379})
	g.Expect(env.Client.Create(ctx, redis)).To(Succeed())
	g.Eventually(ports(a), timeout, poll).Should(Equal([]string{"TCP:1-6378", "TCP:6380-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))
	for _, p := range []client.Object{redis, clbs} {
		g.Eventually(func() metav1.ConditionStatus {
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			for _, c := range p.(interface {
				PolicyStatus() *v1alpha1.LoopbackServiceStatus
			}).PolicyStatus().Conditions {
				if c.Type == v1alpha1.ConditionNetworkPolicyEffective {
					return c.Status
				}
			}
			return ""
		}, timeout, poll).Should(Equal(metav1.ConditionTrue), p.GetName())
	}

	g.Expect(env.Client.Patch(ctx, redis, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"ports":[{"port":6390}]}}`)))).To(Succeed())
	g.Eventually(ports(a), timeout, poll).Should(Equal([]string{"TCP:1-6389", "TCP:6391-14999", "TCP:15001-65535", "UDP:all", "SCTP:all"}))

	g.Expect(env.Client.Delete(ctx, redis)).To(Succeed())
	g.Eventually(ports(a), timeout, poll).Should(Equal(alone))
	g.Expect(ports(b)()).To(Equal(alone), "a LoopbackService of another namespace changed nothing here")
}
