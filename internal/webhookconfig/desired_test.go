package webhookconfig

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	webhookmanifests "github.com/loopguard/loopguard/config/webhook"
)

var excluded = []string{"kube-system", "kube-public", "kube-node-lease", "loopguard-system"}

func templates(t *testing.T) []admissionregistrationv1.ValidatingWebhook {
	t.Helper()
	ts, err := webhookmanifests.Templates()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func opts(t *testing.T) Options {
	return Options{
		Templates:    templates(t),
		ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "loopguard-system", Name: "loopguard-webhook-service", Port: ptr.To[int32](443)}, CABundle: []byte("CA")},
		Excluded:     excluded,
	}
}

func lbs(ns, name string) Policy { return Policy{Namespace: ns, Name: name} }

func clbs(name string, sel string) Policy {
	s, err := metav1.ParseToLabelSelector(sel)
	if err != nil {
		panic(err)
	}
	return Policy{Name: name, NamespaceSelector: s}
}

// summary renders the webhooks of one kind as "name: selector".
func summary(ws []admissionregistrationv1.ValidatingWebhook, kind string) []string {
	var out []string
	for _, w := range ws {
		if strings.HasPrefix(w.Name, kind+".") {
			s, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
			if err != nil {
				panic(err)
			}
			out = append(out, w.Name+": "+s.String())
		}
	}
	return out
}

const sys = "kube-node-lease,kube-public,kube-system,loopguard-system"

func TestDesired(t *testing.T) {
	cases := []struct {
		name      string
		policies  []Policy
		mutate    func(*Options)
		mode      Mode
		pods      []string // the pods.* webhooks
		endpoints []string
		covered   map[Key]string // reason
	}{{
		name: "no policy: no webhook at all",
		mode: ModeNone,
	}, {
		name:      "one LoopbackService: its namespace only, endpoints cluster-wide",
		policies:  []Policy{lbs("shop", "a")},
		mode:      ModeScoped,
		pods:      []string{"pods.loopguard.io: kubernetes.io/metadata.name in (shop)"},
		endpoints: []string{"endpoints.loopguard.io: kubernetes.io/metadata.name notin (" + sys + ")"},
		covered:   map[Key]string{{"shop", "a"}: ReasonRegistered},
	}, {
		name:     "namespaces deduplicated and sorted",
		policies: []Policy{lbs("web", "a"), lbs("shop", "b"), lbs("shop", "c")},
		mode:     ModeScoped,
		pods:     []string{"pods.loopguard.io: kubernetes.io/metadata.name in (shop,web)"},
		covered:  map[Key]string{{"web", "a"}: ReasonRegistered, {"shop", "b"}: ReasonRegistered, {"shop", "c"}: ReasonRegistered},
	}, {
		name:      "a policy in an excluded namespace is not covered, and says so",
		policies:  []Policy{lbs("kube-system", "a")},
		mode:      ModeScoped,
		endpoints: []string{"endpoints.loopguard.io: kubernetes.io/metadata.name notin (" + sys + ")"},
		covered:   map[Key]string{{"kube-system", "a"}: ReasonNamespaceExcluded},
	}, {
		name:     "a cluster policy by its own selector, minus the excluded and the namespaced policies' namespaces",
		policies: []Policy{clbs("agent", "env=prod"), lbs("shop", "a")},
		mode:     ModeScoped,
		pods: []string{
			"pods.loopguard.io: kubernetes.io/metadata.name in (shop)",
			"pods.agent.cluster.loopguard.io: env=prod,kubernetes.io/metadata.name notin (kube-node-lease,kube-public,kube-system,loopguard-system,shop)",
		},
		covered: map[Key]string{{"", "agent"}: ReasonRegistered, {"shop", "a"}: ReasonRegistered},
	}, {
		name:     "cluster policies with one selector share a webhook (named after the first)",
		policies: []Policy{clbs("zeta", "env=prod"), clbs("alpha", "env=prod")},
		mode:     ModeScoped,
		pods:     []string{"pods.alpha.cluster.loopguard.io: env=prod,kubernetes.io/metadata.name notin (" + sys + ")"},
		covered:  map[Key]string{{"", "zeta"}: ReasonRegistered, {"", "alpha"}: ReasonRegistered},
	}, {
		name:     "a narrower selector is covered by the wider one's webhook",
		policies: []Policy{clbs("wide", "env=prod"), clbs("narrow", "env=prod,tier=web")},
		mode:     ModeScoped,
		pods:     []string{"pods.wide.cluster.loopguard.io: env=prod,kubernetes.io/metadata.name notin (" + sys + ")"},
		covered:  map[Key]string{{"", "wide"}: ReasonRegistered, {"", "narrow"}: ReasonRegistered},
	}, {
		name:     "a cluster policy selecting every namespace: one webhook per kind, everywhere",
		policies: []Policy{clbs("all", ""), clbs("agent", "env=prod"), lbs("shop", "a")},
		mode:     ModeEverywhere,
		pods:     []string{"pods.loopguard.io: kubernetes.io/metadata.name notin (" + sys + ")"},
		covered:  map[Key]string{{"", "all"}: ReasonRegistered, {"", "agent"}: ReasonRegistered, {"shop", "a"}: ReasonRegistered},
	}, {
		name:     "past MaxClusterSelectors: everywhere",
		policies: []Policy{clbs("a", "x=1"), clbs("b", "x=2"), clbs("c", "x=3")},
		mutate:   func(o *Options) { o.MaxClusterSelectors = 2 },
		mode:     ModeEverywhere,
		pods:     []string{"pods.loopguard.io: kubernetes.io/metadata.name notin (" + sys + ")"},
	}, {
		name:     "past MaxNamespaces: everywhere",
		policies: []Policy{lbs("a", "p"), lbs("b", "p"), lbs("c", "p")},
		mutate:   func(o *Options) { o.MaxNamespaces = 2 },
		mode:     ModeEverywhere,
		pods:     []string{"pods.loopguard.io: kubernetes.io/metadata.name notin (" + sys + ")"},
	}, {
		name:     "past MaxDedupNamespaces: the cluster webhooks no longer exclude the policies' namespaces",
		policies: []Policy{lbs("a", "p"), lbs("b", "p"), clbs("c", "env=prod")},
		mutate:   func(o *Options) { o.MaxDedupNamespaces = 1 },
		mode:     ModeScoped,
		pods: []string{
			"pods.loopguard.io: kubernetes.io/metadata.name in (a,b)",
			"pods.c.cluster.loopguard.io: env=prod,kubernetes.io/metadata.name notin (" + sys + ")",
		},
	}, {
		name:     "an invalid selector registers nothing for its policy, and says so",
		policies: []Policy{{Name: "bad", NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn}}}}},
		mode:     ModeScoped,
		covered:  map[Key]string{{"", "bad"}: ReasonInvalidSelector},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			o := opts(t)
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			res, err := Desired(tc.policies, o)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Mode).To(Equal(tc.mode))
			g.Expect(summary(res.Webhooks, "pods")).To(Equal(tc.pods))
			if tc.endpoints != nil {
				g.Expect(summary(res.Webhooks, "endpoints")).To(Equal(tc.endpoints))
			}
			for k, reason := range tc.covered {
				g.Expect(res.Coverage).To(HaveKey(k))
				g.Expect(res.Coverage[k].Reason).To(Equal(reason), res.Coverage[k].Message)
				g.Expect(res.Coverage[k].Covered).To(Equal(reason == ReasonRegistered))
			}
			g.Expect(res.Coverage).To(HaveLen(len(tc.policies)))
			// Every scoped kind gets the same groups as pods.
			for _, kind := range []string{"services", "workloads", "replicationcontrollers", "portforward", "exec", "proxy", "debug"} {
				g.Expect(summary(res.Webhooks, kind)).To(HaveLen(len(tc.pods)), kind)
			}
		})
	}
}

func TestDesiredWebhookFields(t *testing.T) {
	g := NewWithT(t)
	o := opts(t)
	res, err := Desired([]Policy{lbs("shop", "a")}, o)
	g.Expect(err).NotTo(HaveOccurred())
	byName := map[string]admissionregistrationv1.ValidatingWebhook{}
	for _, w := range res.Webhooks {
		byName[w.Name] = w
		g.Expect(w.ClientConfig.CABundle).To(Equal([]byte("CA")))
		g.Expect(w.ClientConfig.Service.Name).To(Equal("loopguard-webhook-service"))
		g.Expect(*w.FailurePolicy).To(Equal(admissionregistrationv1.Fail), w.Name)
	}
	g.Expect(*byName["pods.loopguard.io"].ClientConfig.Service.Path).To(Equal("/validate-exposure"))
	g.Expect(*byName["portforward.loopguard.io"].ClientConfig.Service.Path).To(Equal("/validate-portforward"))
	g.Expect(byName["pods.loopguard.io"].MatchConditions).To(HaveLen(2))
	g.Expect(byName["endpoints.loopguard.io"].MatchConditions[0].Name).To(Equal("written-by-a-user"))

	o.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:9443/"), CABundle: []byte("CA")}
	res, err = Desired([]Policy{lbs("shop", "a")}, o)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*res.Webhooks[0].ClientConfig.URL).To(HavePrefix("https://127.0.0.1:9443/validate-"))

	o.Templates = append(o.Templates, admissionregistrationv1.ValidatingWebhook{Name: "new.loopguard.io"})
	_, err = Desired(nil, o)
	g.Expect(err).To(MatchError(ContainSubstring("new.loopguard.io has no entry in webhookconfig.Kinds")))
}

// TestDesiredSelectsWherePoliciesApply checks the result against the
// policies' own semantics on random namespaces: a namespace is sent to the
// scoped webhooks exactly when some policy applies to it (and it is not
// excluded). In ModeEverywhere (past the bounds) every namespace but the
// excluded is sent, once.
func TestDesiredSelectsWherePoliciesApply(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []string{"a", "b", "c"}
	for i := range 300 {
		var policies []Policy
		for j := range r.IntN(4) {
			policies = append(policies, lbs(fmt.Sprintf("ns%d", r.IntN(8)), fmt.Sprintf("p%d", j)))
		}
		for j := range r.IntN(4) {
			sel := fmt.Sprintf("k%d=%s", r.IntN(2), vals[r.IntN(3)])
			if r.IntN(3) == 0 {
				sel += fmt.Sprintf(",k2 in (%s)", vals[r.IntN(3)])
			}
			policies = append(policies, clbs(fmt.Sprintf("c%d", j), sel))
		}
		o := opts(t)
		o.MaxClusterSelectors = 1 + r.IntN(4)
		res, err := Desired(policies, o)
		if err != nil {
			t.Fatal(err)
		}
		for n := range 10 {
			name := fmt.Sprintf("ns%d", n)
			if n == 9 {
				name = "kube-system"
			}
			set := labels.Set{NameLabel: name, "k0": vals[r.IntN(3)], "k1": vals[r.IntN(3)], "k2": vals[r.IntN(3)]}
			want := false
			for _, p := range policies {
				if p.Namespace == name {
					want = true
				}
				if p.Namespace == "" {
					s, _ := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
					want = want || s.Matches(set)
				}
			}
			want = want && name != "kube-system"
			calls := 0
			for _, w := range res.Webhooks {
				if !strings.HasPrefix(w.Name, "pods.") {
					continue
				}
				s, _ := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
				if s.Matches(set) {
					calls++
				}
			}
			if want && calls == 0 || !want && calls > 0 && res.Mode == ModeScoped {
				t.Fatalf("case %d, namespace %v: a policy applies: %v, but the pods webhooks match %d times\npolicies: %+v\nwebhooks: %v", i, set, want, calls, policies, summary(res.Webhooks, "pods"))
			}
			if res.Mode == ModeEverywhere && calls > 1 {
				t.Fatalf("case %d: everywhere, yet %d calls", i, calls)
			}
		}
	}
}
