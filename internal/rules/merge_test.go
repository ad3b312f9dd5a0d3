package rules

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestMergedFindingsDescribeEveryPolicy checks that when the collector
// merges the findings of several policies on one field, the message stays
// true for every policy it names: each finding that names a policy mentions
// what that policy is about (its ports, the pods it protects). The check
// does not care whether a fix merges (and lists everything) or splits the
// findings.
func TestMergedFindingsDescribeEveryPolicy(t *testing.T) {
	const stats = "LoopbackService shop/stats"
	cartPod := func(opts ...podOpt) *corev1.Pod {
		return pod("cart-7d9", append([]podOpt{withLabels("app", "cart")}, opts...)...)
	}
	tests := []struct {
		name     string
		findings func(t *testing.T) []Finding
		// mustMention: policy ref -> substrings that every finding naming
		// the policy must contain.
		mustMention map[string][]string
		// wantPolicies: every one of these policies must be named by some
		// finding.
		wantPolicies []string
	}{
		{
			name: "hostNetwork pod selected by two policies with different ports",
			findings: func(t *testing.T) []Finding {
				env := shopEnv(
					nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000)),
					nsPolicy(t, "shop", "stats", podSelector("app", "cart"), protects(9901)),
				)
				return EvaluatePod(env, podTemplate(t, cartPod(withHostNetwork())))
			},
			mustMention:  map[string][]string{envoyAdmin: {"15000/TCP"}, stats: {"9901/TCP"}},
			wantPolicies: []string{envoyAdmin, stats},
		},
		{
			name: "hostNetwork pod, policies in different sets",
			findings: func(t *testing.T) []Finding {
				env := shopEnv(
					nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000)),
					clusterPolicy(t, "platform-admin", podSelector("app", "cart"), protects(9090, through(9099))),
				)
				return EvaluatePod(env, podTemplate(t, cartPod(withHostNetwork())))
			},
			mustMention:  map[string][]string{envoyAdmin: {"15000/TCP"}, platformAdmin: {"9090-9099/TCP"}},
			wantPolicies: []string{envoyAdmin, platformAdmin},
		},
		{
			name: "Service port reaching port 15000 on pods protected by different policies",
			findings: func(t *testing.T) []Finding {
				env := shopEnv(
					nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000)),
					nsPolicy(t, "shop", "web-admin", podSelector("app", "web"), protects(15000)),
				)
				pods := []*corev1.Pod{
					pod("cart-1", withLabels("app", "cart", "tier", "front"), withContainer("envoy", port(15000))),
					pod("web-1", withLabels("app", "web", "tier", "front"), withContainer("envoy", port(15000))),
				}
				svc := service("front", selector("tier", "front"), servicePort(80, targetPort(15000)))
				return EvaluateService(env, svc, views(pods...))
			},
			mustMention:  map[string][]string{envoyAdmin: {"cart-1"}, "LoopbackService shop/web-admin": {"web-1"}},
			wantPolicies: []string{envoyAdmin, "LoopbackService shop/web-admin"},
		},
		{
			// Passes today: every pod the Service selects is protected by
			// both policies, so the first policy's message is true for both.
			name: "Service port: one policy through pods, the other through pods and implied by the selector",
			findings: func(t *testing.T) []Finding {
				env := shopEnv(
					nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart", "mesh", "envoy"), protects(15000)),
					nsPolicy(t, "shop", "front", podSelector("tier", "front"), protects(15000)),
				)
				pods := []*corev1.Pod{pod("cart-1", withLabels("app", "cart", "mesh", "envoy", "tier", "front"), withContainer("envoy", port(15000)))}
				svc := service("front", selector("tier", "front", "app", "cart"), servicePort(80, targetPort(15000)))
				return EvaluateService(env, svc, views(pods...))
			},
			mustMention:  map[string][]string{envoyAdmin: {"cart-1"}, "LoopbackService shop/front": {"cart-1"}},
			wantPolicies: []string{envoyAdmin, "LoopbackService shop/front"},
		},
		{
			name: "one Service, two ports protected by different policies (pod side)",
			findings: func(t *testing.T) []Finding {
				env := shopEnv(
					nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000)),
					nsPolicy(t, "shop", "stats", podSelector("app", "cart"), protects(9901)),
				)
				svc := service("cart-admin", selector("app", "cart"),
					servicePort(80, targetPort(15000)), servicePort(81, targetPort(9901)))
				p := cartPod(withContainer("envoy", port(15000), port(9901)))
				return EvaluatePodServices(env, podTemplate(t, p), []*corev1.Service{svc})
			},
			mustMention:  map[string][]string{envoyAdmin: {"15000/TCP"}, stats: {"9901/TCP"}},
			wantPolicies: []string{envoyAdmin, stats},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings := tt.findings(t)
			named := map[string]bool{}
			for i, f := range findings {
				msg := f.Message()
				for _, ref := range refStrings(f.Policies) {
					named[ref] = true
					for _, s := range tt.mustMention[ref] {
						if !strings.Contains(msg, s) {
							t.Errorf("finding %d (%s %s) names %s but does not mention %q:\n\t%s", i, f.Reason, f.Field, ref, s, msg)
						}
					}
				}
			}
			for _, ref := range tt.wantPolicies {
				if !named[ref] {
					t.Errorf("no finding names %s", ref)
				}
			}
		})
	}
}
