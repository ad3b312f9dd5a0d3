package rules

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// judgedNames renders what an audit judged, and its findings, as
// "Kind/name:Reason,...".
func judgedNames(r Report) []string {
	var out []string
	for _, j := range r.Judged {
		ref := objectRef(j.Object)
		s := ref.Kind + "/" + ref.Name
		for i, f := range j.Findings {
			if i == 0 {
				s += ":"
			} else {
				s += ","
			}
			s += f.Reason
		}
		out = append(out, s)
	}
	return out
}

func allowAll(name string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: objectMeta(name), Spec: networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}
}

func TestAudit(t *testing.T) {
	envoy := withContainer("envoy", port(15000))
	cart := withLabels("app", "cart")
	policy := nsPolicy(t, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000))
	dep := withUID(deployment("cart", cart, envoy), "dep-uid")
	rs := withUID(replicaSet("cart-7f9", cart, envoy), "rs-uid")
	ownedBy("apps/v1", "Deployment", "cart", "dep-uid")(rs)
	rsPod := pod("cart-7f9-x", cart, envoy)
	ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "rs-uid")(rsPod)
	fakeOwner := pod("cart-fake", cart, envoy)
	ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "other-uid")(fakeOwner)
	own := allowAll(ManagedNetworkPolicyName(policy.Ref))
	own.OwnerReferences = []metav1.OwnerReference{{APIVersion: "loopguard.io/v1alpha1", Kind: "LoopbackService", Name: "envoy-admin", UID: policy.UID, Controller: ptr.To(true)}}

	tests := []struct {
		name          string
		snap          Snapshot
		wantJudged    []string
		wantConflicts []string
	}{{
		name:       "nothing applies",
		snap:       Snapshot{Env: shopEnv(), Pods: views(pod("a", cart, envoy))},
		wantJudged: []string{"Pod/a"},
	}, {
		name: "order: pods, Services, workloads",
		snap: Snapshot{Env: shopEnv(policy), Pods: views(pod("a", cart, envoy)),
			Workloads: []runtime.Object{statefulSet("db", cart, envoy)},
			Services:  []*corev1.Service{service("web", selector("app", "cart"), servicePort(80, targetPort(15000)))}},
		wantJudged: []string{"Pod/a:ContainerPort,SelectedByService", "Service/web:ServiceTarget", "StatefulSet/db:ContainerPort,SelectedByService"},
	}, {
		name: "a pod and a ReplicaSet their real owners control are judged through them",
		snap: Snapshot{Env: shopEnv(policy), Pods: views(rsPod, fakeOwner),
			Workloads: []runtime.Object{rs, dep}},
		wantJudged: []string{"Pod/cart-fake:ContainerPort", "Deployment/cart:ContainerPort"},
	}, {
		name:       "a pod being deleted is not judged",
		snap:       Snapshot{Env: shopEnv(policy), Pods: views(pod("a", cart, envoy, terminating()), pod("b", cart))},
		wantJudged: []string{"Pod/b"},
	}, {
		name: "NetworkPolicies that re-open a protected port, loopguard's own included",
		snap: Snapshot{Env: shopEnv(policy), Pods: views(pod("b", cart)),
			NetworkPolicies: []*networkingv1.NetworkPolicy{allowAll("allow-all"), own}},
		wantJudged:    []string{"Pod/b"},
		wantConflicts: []string{"allow-all 15000/TCP envoy-admin", own.Name + " 15000/TCP envoy-admin"},
	}, {
		name: "the policy's own NetworkPolicy, just written, is not judged against it",
		snap: Snapshot{Env: shopEnv(policy), Pods: views(pod("b", cart)), OwnNetworkPoliciesWritten: true,
			NetworkPolicies: []*networkingv1.NetworkPolicy{allowAll("allow-all"), own}},
		wantJudged:    []string{"Pod/b"},
		wantConflicts: []string{"allow-all 15000/TCP envoy-admin"},
	}, {
		name: "only the pods a protected pod's NetworkPolicy selects, not those being deleted",
		snap: Snapshot{Env: shopEnv(policy), Pods: views(pod("b", cart, terminating())),
			NetworkPolicies: []*networkingv1.NetworkPolicy{func() *networkingv1.NetworkPolicy {
				np := allowAll("cart-only")
				np.Spec.PodSelector.MatchLabels = kv("app", "cart")
				return np
			}()}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Audit(tc.snap)
			if got := judgedNames(rep); !equalStrings(got, tc.wantJudged) {
				t.Errorf("judged %q, want %q", got, tc.wantJudged)
			}
			var conflicts []string
			for _, c := range rep.Conflicts {
				conflicts = append(conflicts, c.Name+" "+c.Port.String()+" "+c.Policy.Name)
			}
			if !equalStrings(conflicts, tc.wantConflicts) {
				t.Errorf("conflicts %q, want %q", conflicts, tc.wantConflicts)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotAdd(t *testing.T) {
	var s Snapshot
	for _, o := range []runtime.Object{pod("a"), service("s"), deployment("d"), cronJob("c"), &corev1.Endpoints{}} {
		if !s.Add(o) {
			t.Errorf("Add(%T) = false", o)
		}
	}
	if s.Add(&corev1.ConfigMap{}) || s.Add(allowAll("np")) {
		t.Error("Add took a kind the rules do not judge")
	}
	if len(s.Pods) != 1 || len(s.Services) != 1 || len(s.Workloads) != 2 || len(s.Endpoints) != 1 {
		t.Errorf("Add filled %+v", s)
	}
}

func TestNewEnv(t *testing.T) {
	p := nsPolicy(t, testNamespace, "p", podSelector("app", "cart"), protects(15000))
	env := NewEnv(testNamespace, NamespaceLabels(testNamespace, kv("team", "shop")), nil, NewSet(nil), NewSet([]*Policy{p}))
	if len(env.Sets) != 1 || env.Empty() {
		t.Fatalf("NewEnv kept %d sets, want the one non-empty", len(env.Sets))
	}
	if !labels.Equals(env.NamespaceLabels.(labels.Set), labels.Set{NamespaceNameLabel: testNamespace, "team": "shop"}) {
		t.Errorf("labels %v", env.NamespaceLabels)
	}
	if !NewEnv("x", nil).Empty() {
		t.Error("an env without sets is not empty")
	}
}
