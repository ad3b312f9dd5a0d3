package netpol

import (
	"fmt"
	"math/rand"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

func compileLBS(t testing.TB, name string, sel metav1.LabelSelector, ports ...v1alpha1.LoopbackPort) (*rules.Policy, metav1.LabelSelector) {
	t.Helper()
	p, err := rules.Compile(&v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       v1alpha1.LoopbackServiceSpec{PodSelector: sel, Ports: ports},
	})
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return p, sel
}

// The cases: config/samples' envoy-admin (every pod, 15000) and
// cart-redis (app=cart, 6379), and a tenant's {podSelector: {}, ports: [1]}.
func TestClosed(t *testing.T) {
	g := NewWithT(t)
	envoy, _ := compileLBS(t, "envoy-admin", metav1.LabelSelector{}, v1alpha1.LoopbackPort{Port: 15000})
	redis, _ := compileLBS(t, "cart-redis", metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}, v1alpha1.LoopbackPort{Port: 6379})
	web, _ := compileLBS(t, "web", metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, v1alpha1.LoopbackPort{Port: 9090})
	tenant, _ := compileLBS(t, "port-1", metav1.LabelSelector{}, v1alpha1.LoopbackPort{Port: 1})
	all := []*rules.Policy{envoy, redis, web, tenant}

	g.Expect(Closed(envoy, all)).To(Equal([]rules.PortRange{pr(tcp, 1, 1), pr(tcp, 6379, 6379), pr(tcp, 9090, 9090), pr(tcp, 15000, 15000)}))
	g.Expect(Closed(redis, all)).To(Equal([]rules.PortRange{pr(tcp, 1, 1), pr(tcp, 6379, 6379), pr(tcp, 15000, 15000)}), "app=cart and app=web never meet")
	g.Expect(Closed(web, all)).To(Equal([]rules.PortRange{pr(tcp, 1, 1), pr(tcp, 9090, 9090), pr(tcp, 15000, 15000)}))
	g.Expect(Closed(tenant, all)).To(Equal(Closed(envoy, all)), "a policy on every pod closes every policy's ports")
	g.Expect(Closed(redis, nil)).To(Equal([]rules.PortRange{pr(tcp, 6379, 6379)}), "alone: its own ports")
}

// ---------------------------------------------------------------------------
// Property: for random overlapping policies and pods, the union of the
// managed NetworkPolicies never admits a port that a policy selecting the
// pod protects. Checked twice: with Conflicts, the evaluation conflict
// detection uses, and with an independent per-pod, per-port evaluation.

var (
	propKeys   = []string{"app", "tier"}
	propValues = []string{"a", "b", "c"}
)

func randomSelector(r *rand.Rand) metav1.LabelSelector {
	var sel metav1.LabelSelector
	for _, k := range propKeys {
		pick := func() []string {
			var vs []string
			for _, v := range propValues {
				if r.Intn(2) == 0 {
					vs = append(vs, v)
				}
			}
			if len(vs) == 0 {
				vs = []string{propValues[r.Intn(len(propValues))]}
			}
			return vs
		}
		switch r.Intn(7) {
		case 0, 1: // no requirement on this key
		case 2:
			if sel.MatchLabels == nil {
				sel.MatchLabels = map[string]string{}
			}
			sel.MatchLabels[k] = propValues[r.Intn(len(propValues))]
		case 3:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: pick()})
		case 4:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpNotIn, Values: pick()})
		case 5:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpExists})
		case 6:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpDoesNotExist})
		}
	}
	return sel
}

// propPort draws protected ports from a small space so that policies share
// and straddle ports.
func randomPorts(r *rand.Rand) []v1alpha1.LoopbackPort {
	var out []v1alpha1.LoopbackPort
	for n := 1 + r.Intn(2); n > 0; n-- {
		lp := v1alpha1.LoopbackPort{Port: int32(1 + r.Intn(20))}
		if r.Intn(3) == 0 {
			end := lp.Port + int32(r.Intn(4))
			lp.EndPort = &end
		}
		if r.Intn(4) == 0 {
			lp.Protocol = udp
		}
		out = append(out, lp)
	}
	return out
}

func randomPodLabels(r *rand.Rand) map[string]string {
	l := map[string]string{}
	for _, k := range propKeys {
		if i := r.Intn(len(propValues) + 2); i < len(propValues) {
			l[k] = propValues[i]
		} else if i == len(propValues) {
			l[k] = "d" // a value no selector names
		}
	}
	return l
}

type propCase struct {
	policies  []*rules.Policy
	selectors []metav1.LabelSelector
	pods      []*corev1.Pod
}

func randomCase(t testing.TB, r *rand.Rand) propCase {
	var c propCase
	for i, n := 0, 2+r.Intn(4); i < n; i++ {
		p, sel := compileLBS(t, fmt.Sprintf("p%d", i), randomSelector(r), randomPorts(r)...)
		c.policies = append(c.policies, p)
		c.selectors = append(c.selectors, sel)
	}
	for i, n := 0, 1+r.Intn(6); i < n; i++ {
		c.pods = append(c.pods, testPod(fmt.Sprintf("pod%d", i), randomPodLabels(r)))
	}
	return c
}

// unionAdmitsProtected returns, for the first pod found, a protected port
// that the union of nps admits, or "".
func unionAdmitsProtected(c propCase, nps []*networkingv1.NetworkPolicy) string {
	for _, pod := range c.pods {
		l := labels.Set(pod.Labels)
		var selecting []*networkingv1.NetworkPolicy
		for _, np := range nps {
			if s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err == nil && s.Matches(l) {
				selecting = append(selecting, np)
			}
		}
		for _, p := range c.policies {
			if !p.Selector.Matches(l) {
				continue
			}
			for _, r := range p.Ports {
				for port := r.From; port <= r.To; port++ {
					for _, np := range selecting {
						if cniAdmits(np.Spec, r.Protocol, port) {
							return fmt.Sprintf("pod %s %v: %s admits %d/%s, protected by %s", pod.Name, pod.Labels, np.Name, port, r.Protocol, p.Ref)
						}
					}
				}
			}
		}
	}
	return ""
}

func generate(c propCase, closed func(p *rules.Policy) []rules.PortRange) []*networkingv1.NetworkPolicy {
	var nps []*networkingv1.NetworkPolicy
	for i, p := range c.policies {
		nps = append(nps, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "loopguard-" + p.Ref.Name, Namespace: "shop"},
			Spec:       Desired(c.selectors[i], closed(p)),
		})
	}
	return nps
}

func TestClosedProperty(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	const runs = 2000
	for i := 0; i < runs; i++ {
		c := randomCase(t, r)
		nps := generate(c, func(p *rules.Policy) []rules.PortRange { return Closed(p, c.policies) })
		for _, p := range c.policies {
			for _, np := range nps {
				if cs := Conflicts(np, p, views(c.pods...)); len(cs) > 0 {
					t.Fatalf("run %d: the managed NetworkPolicy %s conflicts with %s: %v\nselectors %v\npods %v", i, np.Name, p.Ref, cs, c.selectors, podLabels(c.pods))
				}
			}
		}
		if msg := unionAdmitsProtected(c, nps); msg != "" {
			t.Fatalf("run %d: %s\nselectors %v", i, msg, c.selectors)
		}
	}
}

// The property test can fail: with each policy closing only its own ports
// (loopguard before issue #15), random cases find a hole, and Conflicts,
// the evaluation status and audit use, reports it.
func TestClosedPropertyCatchesOwnPortsOnly(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	holes, detected := 0, 0
	for i := 0; i < 500; i++ {
		c := randomCase(t, r)
		nps := generate(c, func(p *rules.Policy) []rules.PortRange { return p.Ports })
		if unionAdmitsProtected(c, nps) == "" {
			continue
		}
		holes++
		found := false
		for _, p := range c.policies {
			for _, np := range nps {
				found = found || len(Conflicts(np, p, views(c.pods...))) > 0
			}
		}
		if found {
			detected++
		}
	}
	if holes == 0 {
		t.Fatalf("no random case opened a protected port with own-ports-only NetworkPolicies: the generator is too weak")
	}
	if detected != holes {
		t.Fatalf("Conflicts saw %d of %d holes in own-ports-only NetworkPolicies", detected, holes)
	}
	t.Logf("own-ports-only NetworkPolicies: %d of 500 random cases open a protected port, all reported by Conflicts", holes)
}

func podLabels(pods []*corev1.Pod) []map[string]string {
	var out []map[string]string
	for _, p := range pods {
		out = append(out, p.Labels)
	}
	return out
}
