package rules

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestEnvEmpty(t *testing.T) {
	p := nsPolicy(t, "shop", "p", protects(15000))
	tests := []struct {
		name string
		env  *Env
		want bool
	}{
		{"no sets", &Env{}, true},
		{"nil set", &Env{Sets: []*Set{nil}}, true},
		{"empty sets", &Env{Sets: []*Set{NewSet(nil), NewSet([]*Policy{})}}, true},
		{"one policy after empty sets", &Env{Sets: []*Set{nil, NewSet(nil), NewSet([]*Policy{p})}}, false},
		// A policy of another namespace still makes the env non-empty:
		// Empty only says whether any policy could apply.
		{"policy of another namespace", &Env{Namespace: "billing", Sets: []*Set{NewSet([]*Policy{p})}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.env.Empty(); got != tt.want {
				t.Errorf("Empty() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnvMatchingPolicies(t *testing.T) {
	cart := nsPolicy(t, "shop", "cart", podSelector("app", "cart"), protects(15000))
	all := nsPolicy(t, "shop", "all", protects(9901))
	other := nsPolicy(t, "billing", "cart", podSelector("app", "cart"), protects(15000))
	prod := clusterPolicy(t, "prod", nsSelector("env", "prod"), podSelector("app", "cart"), protects(15000))
	dev := clusterPolicy(t, "dev", nsSelector("env", "dev"), protects(15000))
	env := shopEnv(cart, all, other, prod, dev)
	tests := []struct {
		name   string
		labels labels.Labels
		want   []string
	}{
		{"cart pod", labels.Set{"app": "cart"}, []string{"LoopbackService shop/cart", "LoopbackService shop/all", "ClusterLoopbackService prod"}},
		{"web pod", labels.Set{"app": "web"}, []string{"LoopbackService shop/all"}},
		{"no labels", labels.Set{}, []string{"LoopbackService shop/all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := policyNames(env.MatchingPolicies(tt.labels)); !slices.Equal(got, tt.want) {
				t.Errorf("MatchingPolicies(%v) = %q, want %q", tt.labels, got, tt.want)
			}
		})
	}
}
