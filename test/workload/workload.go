// Package workload is the synthetic cluster that loopguard's benchmarks and
// its load generator (bench/loadgen) review, so that both measure the same
// thing:
//
//   - N LoopbackServices in one of two placements: Spread (one policy in each
//     of N namespaces) or OneNamespace (all N in the reviewed namespace);
//     policy 0, GuardPolicy, always lives in the reviewed namespace and
//     protects its app=cart pods (15000/TCP named envoy-admin, 6060-6069/TCP);
//     the others protect one distinct port each for other apps;
//   - the existing pods and Services of the reviewed namespace, served by
//     Reader, an in-memory client.Reader with the semantics of the informer
//     cache under client.UnsafeDisableDeepCopy;
//   - the objects under review (Cases), pre-marshalled the way the API
//     server sends them: defaulted, with managedFields.
//
// It imports no webhook code, so the webhooks package's own tests can use
// it.
package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// Namespace is the namespace of every reviewed object.
const Namespace = "shop"

// GuardPolicy is the name of the LoopbackService (in Namespace) that
// protects the reviewed pods.
const GuardPolicy = "cart-guard"

// GuardRef is GuardPolicy as messages name it.
const GuardRef = "LoopbackService " + Namespace + "/" + GuardPolicy

// PolicyCounts are the policy counts the benchmarks run at.
var PolicyCounts = []int{1, 10, 100, 1000, 10000}

// Placement says where the N policies live.
type Placement string

const (
	// Spread puts one policy in each of N namespaces (policy 0 in
	// Namespace): the reviewed namespace holds one.
	Spread Placement = "spread"
	// OneNamespace puts all N policies in Namespace.
	OneNamespace Placement = "one-namespace"
	// OneNamespaceSamePort is OneNamespace where every policy also
	// protects 15000/TCP (for its own app): the worst case of the port
	// index, which then returns all N policies for port 15000.
	OneNamespaceSamePort Placement = "one-namespace-same-port"
	// OneNamespaceAllSelect is OneNamespace where every policy selects the
	// reviewed pods (app=cart), each protecting its own port: the reviewed
	// pod is judged against all N (make compare's latency workload).
	OneNamespaceAllSelect Placement = "one-namespace-all-select"
)

// Placements are the placements every benchmark runs.
var Placements = []Placement{Spread, OneNamespace}

// Policies returns n LoopbackServices placed as p (n >= 1).
func Policies(n int, p Placement) []*v1alpha1.LoopbackService {
	out := make([]*v1alpha1.LoopbackService, 0, n)
	out = append(out, &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: GuardPolicy, Namespace: Namespace, UID: "uid-cart-guard", Generation: 1},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports: []v1alpha1.LoopbackPort{
				{Port: 15000, Name: "envoy-admin", Protocol: corev1.ProtocolTCP},
				{Port: 6060, EndPort: ptr.To[int32](6069), Protocol: corev1.ProtocolTCP},
			},
			EnforcementAction: v1alpha1.ActionDeny,
			HostNetwork:       v1alpha1.HostNetworkDeny,
			NetworkPolicy:     v1alpha1.NetworkPolicyManaged,
		},
	})
	actions := []v1alpha1.EnforcementAction{v1alpha1.ActionDeny, v1alpha1.ActionWarn, v1alpha1.ActionAudit}
	for i := 1; i < n; i++ {
		ns := Namespace
		if p == Spread {
			ns = fmt.Sprintf("team-%05d", i)
		}
		app := fmt.Sprintf("svc-%05d", i)
		sel := metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		if p == OneNamespaceAllSelect {
			sel.MatchLabels["app"] = "cart"
		}
		if i%4 == 0 {
			sel.MatchExpressions = []metav1.LabelSelectorRequirement{
				{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"backend", "worker"}},
			}
		}
		ports := []v1alpha1.LoopbackPort{
			// 20001..29999 for n <= 10,000: distinct, none the reviewed
			// objects use.
			{Port: int32(20000 + i%40000), Name: fmt.Sprintf("adm-%05d", i), Protocol: corev1.ProtocolTCP},
		}
		if p == OneNamespaceSamePort {
			ports = append(ports, v1alpha1.LoopbackPort{Port: 15000, Protocol: corev1.ProtocolTCP})
		}
		out = append(out, &v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("team-%05d-admin", i), Namespace: ns,
				UID: types.UID(fmt.Sprintf("uid-%05d", i)), Generation: 1,
			},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector:       sel,
				Ports:             ports,
				EnforcementAction: actions[i%len(actions)],
				HostNetwork:       v1alpha1.HostNetworkDeny,
				NetworkPolicy:     v1alpha1.NetworkPolicyManaged,
			},
		})
	}
	return out
}

// NewIndex returns a synced policy index holding Policies(n, p) and the
// labels of their namespaces, with the reviewed namespace's policy set
// already built (the index builds it lazily on the first review).
func NewIndex(n int, p Placement) (*policyindex.Index, error) {
	idx := policyindex.New()
	for _, lbs := range Policies(n, p) {
		if err := idx.SetLoopbackService(lbs); err != nil {
			return nil, err
		}
		idx.SetNamespaceLabels(lbs.Namespace, map[string]string{"kubernetes.io/metadata.name": lbs.Namespace})
	}
	idx.MarkSynced()
	if env := idx.Env(Namespace); env.Empty() {
		return nil, fmt.Errorf("no policy applies in namespace %s", Namespace)
	}
	return idx, nil
}

// ---------------------------------------------------------------------------
// The existing cluster
// ---------------------------------------------------------------------------
