package rules

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestProtectedRanges(t *testing.T) {
	cart := nsPolicy(t, "shop", "cart", podSelector("app", "cart"), protects(15000, lpName("envoy-admin")), protects(9000, through(9010), lpProtocol(corev1.ProtocolUDP)))
	all := nsPolicy(t, "shop", "all", protects(15000))
	other := nsPolicy(t, "billing", "cart", podSelector("app", "cart"), protects(6379))
	prod := clusterPolicy(t, "prod", nsSelector("env", "prod"), podSelector("app", "cart"), protects(15001))
	tests := []struct {
		name   string
		env    *Env
		labels map[string]string
		want   []string
	}{
		{"cart pod: namespaced and cluster policies, duplicates merged", shopEnv(cart, all, other, prod), kv("app", "cart"), []string{"15000/TCP", "15001/TCP", "9000-9010/UDP"}},
		{"web pod", shopEnv(cart, all, other, prod), kv("app", "web"), []string{"15000/TCP"}},
		{"no policy selects it", shopEnv(cart, other), kv("app", "web"), nil},
		{"empty env", shopEnv(), kv("app", "cart"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range ProtectedRanges(tt.env, tt.labels) {
				got = append(got, r.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ProtectedRanges = %q, want %q", got, tt.want)
			}
		})
	}
}
