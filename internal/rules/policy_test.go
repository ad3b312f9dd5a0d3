package rules

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		name            string
		opts            []specOpt
		wantPorts       []PortRange
		wantAction      v1alpha1.EnforcementAction
		wantHostNetwork v1alpha1.HostNetworkAction
	}{
		{
			name:            "defaults: TCP, Deny, hostNetwork Deny",
			opts:            []specOpt{podSelector("app", "cart"), protects(15000)},
			wantPorts:       []PortRange{{Protocol: corev1.ProtocolTCP, From: 15000, To: 15000}},
			wantAction:      v1alpha1.ActionDeny,
			wantHostNetwork: v1alpha1.HostNetworkDeny,
		},
		{
			name: "explicit values are kept",
			opts: []specOpt{
				podSelector("app", "cart"),
				protects(53, lpProtocol(corev1.ProtocolUDP), lpName("dns")),
				protects(15000, through(15010), lpProtocol(corev1.ProtocolTCP)),
				protects(9000, lpProtocol(corev1.ProtocolSCTP)),
				enforce(v1alpha1.ActionWarn),
				hostNetworkAction(v1alpha1.HostNetworkAudit),
			},
			wantPorts: []PortRange{
				{Protocol: corev1.ProtocolUDP, From: 53, To: 53, Name: "dns"},
				{Protocol: corev1.ProtocolTCP, From: 15000, To: 15010},
				{Protocol: corev1.ProtocolSCTP, From: 9000, To: 9000},
			},
			wantAction:      v1alpha1.ActionWarn,
			wantHostNetwork: v1alpha1.HostNetworkAudit,
		},
		{
			name:            "Audit action",
			opts:            []specOpt{protects(1), protects(65535), enforce(v1alpha1.ActionAudit)},
			wantPorts:       []PortRange{{Protocol: "TCP", From: 1, To: 1}, {Protocol: "TCP", From: 65535, To: 65535}},
			wantAction:      v1alpha1.ActionAudit,
			wantHostNetwork: v1alpha1.HostNetworkDeny,
		},
		{
			name:            "endPort equal to port",
			opts:            []specOpt{protects(8080, through(8080))},
			wantPorts:       []PortRange{{Protocol: "TCP", From: 8080, To: 8080}},
			wantAction:      v1alpha1.ActionDeny,
			wantHostNetwork: v1alpha1.HostNetworkDeny,
		},
		{
			name:            "full range",
			opts:            []specOpt{protects(1, through(65535))},
			wantPorts:       []PortRange{{Protocol: "TCP", From: 1, To: 65535}},
			wantAction:      v1alpha1.ActionDeny,
			wantHostNetwork: v1alpha1.HostNetworkDeny,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(t *testing.T, p *Policy) {
				t.Helper()
				if !slices.Equal(p.Ports, tt.wantPorts) {
					t.Errorf("Ports = %+v, want %+v", p.Ports, tt.wantPorts)
				}
				if p.Action != tt.wantAction {
					t.Errorf("Action = %q, want %q", p.Action, tt.wantAction)
				}
				if p.HostNetwork != tt.wantHostNetwork {
					t.Errorf("HostNetwork = %q, want %q", p.HostNetwork, tt.wantHostNetwork)
				}
			}
			t.Run("LoopbackService", func(t *testing.T) {
				p, err := Compile(lbs("shop", "envoy-admin", tt.opts...))
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				check(t, p)
				if want := (PolicyRef{Kind: KindLoopbackService, Namespace: "shop", Name: "envoy-admin"}); p.Ref != want {
					t.Errorf("Ref = %+v, want %+v", p.Ref, want)
				}
				if p.UID != "uid-shop-envoy-admin" || p.Generation != 3 {
					t.Errorf("UID, Generation = %q, %d; want uid-shop-envoy-admin, 3", p.UID, p.Generation)
				}
				if p.NamespaceSelector != nil {
					t.Errorf("NamespaceSelector = %v, want nil for a namespaced policy", p.NamespaceSelector)
				}
			})
			t.Run("ClusterLoopbackService", func(t *testing.T) {
				p, err := CompileCluster(clbs("platform-admin", tt.opts...))
				if err != nil {
					t.Fatalf("CompileCluster: %v", err)
				}
				check(t, p)
				if want := (PolicyRef{Kind: KindClusterLoopbackService, Name: "platform-admin"}); p.Ref != want {
					t.Errorf("Ref = %+v, want %+v", p.Ref, want)
				}
				if p.UID != "uid-cluster-platform-admin" || p.Generation != 7 {
					t.Errorf("UID, Generation = %q, %d; want uid-cluster-platform-admin, 7", p.UID, p.Generation)
				}
				if p.NamespaceSelector == nil {
					t.Errorf("NamespaceSelector = nil, want a selector for a cluster policy")
				}
			})
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		opts    []specOpt
		wantErr []string // substrings of the error, in both kinds of policy
	}{
		{
			name:    "unknown operator",
			opts:    []specOpt{podSelectorExpr("app", "Like", "cart"), protects(15000)},
			wantErr: []string{"spec.podSelector:", `"Like"`},
		},
		{
			name:    "In without values",
			opts:    []specOpt{podSelectorExpr("app", metav1.LabelSelectorOpIn), protects(15000)},
			wantErr: []string{"spec.podSelector:"},
		},
		{
			name:    "Exists with values",
			opts:    []specOpt{podSelectorExpr("app", metav1.LabelSelectorOpExists, "cart"), protects(15000)},
			wantErr: []string{"spec.podSelector:"},
		},
		{
			name:    "invalid label key",
			opts:    []specOpt{podSelector("not a key!", "cart"), protects(15000)},
			wantErr: []string{"spec.podSelector:"},
		},
		{
			name:    "invalid label value",
			opts:    []specOpt{podSelector("app", "no spaces allowed"), protects(15000)},
			wantErr: []string{"spec.podSelector:"},
		},
		{
			name:    "endPort below port",
			opts:    []specOpt{protects(80), protects(15010, through(15000))},
			wantErr: []string{"spec.ports[1]: invalid range 15010-15000"},
		},
		{
			name:    "port 0",
			opts:    []specOpt{protects(0)},
			wantErr: []string{"spec.ports[0]: invalid range 0-0"},
		},
		{
			name:    "endPort above 65535",
			opts:    []specOpt{protects(65000, through(65536))},
			wantErr: []string{"spec.ports[0]: invalid range 65000-65536"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(lbs("shop", "bad", tt.opts...))
			if err == nil {
				t.Fatalf("Compile: no error")
			}
			if !strings.HasPrefix(err.Error(), "LoopbackService shop/bad: ") {
				t.Errorf("Compile error %q does not name the policy", err)
			}
			_, cerr := CompileCluster(clbs("bad", tt.opts...))
			if cerr == nil {
				t.Fatalf("CompileCluster: no error")
			}
			if !strings.HasPrefix(cerr.Error(), "ClusterLoopbackService bad: ") {
				t.Errorf("CompileCluster error %q does not name the policy", cerr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Compile error %q does not contain %q", err, s)
				}
				if !strings.Contains(cerr.Error(), s) {
					t.Errorf("CompileCluster error %q does not contain %q", cerr, s)
				}
			}
		})
	}
}

func TestCompileClusterNamespaceSelectorError(t *testing.T) {
	tests := []struct {
		name string
		opt  specOpt
	}{
		{"unknown operator", nsSelectorExpr("env", "Like", "prod")},
		{"NotIn without values", nsSelectorExpr("env", metav1.LabelSelectorOpNotIn)},
		{"invalid key", nsSelector("bad key", "x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileCluster(clbs("platform-admin", tt.opt, protects(15000)))
			if err == nil {
				t.Fatal("no error")
			}
			if want := "ClusterLoopbackService platform-admin: spec.namespaceSelector: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want prefix %q", err, want)
			}
		})
	}
}

func TestAppliesToNamespace(t *testing.T) {
	tests := []struct {
		name      string
		policy    *Policy
		namespace string
		nsLabels  labels.Labels
		want      bool
	}{
		{"namespaced: same namespace", nsPolicy(t, "shop", "p", protects(1)), "shop", labels.Set{"team": "shop"}, true},
		{"namespaced: same namespace, nil labels", nsPolicy(t, "shop", "p", protects(1)), "shop", nil, true},
		{"namespaced: other namespace", nsPolicy(t, "shop", "p", protects(1)), "billing", labels.Set{"team": "shop"}, false},
		{"namespaced: empty namespace", nsPolicy(t, "shop", "p", protects(1)), "", nil, false},
		{"cluster: {} matches any namespace", clusterPolicy(t, "p", protects(1)), "billing", labels.Set{"team": "billing"}, true},
		{"cluster: {} matches nil labels", clusterPolicy(t, "p", protects(1)), "kube-system", nil, true},
		{"cluster: matchLabels match", clusterPolicy(t, "p", nsSelector("env", "prod"), protects(1)), "shop", labels.Set{"env": "prod", "team": "shop"}, true},
		{"cluster: matchLabels mismatch", clusterPolicy(t, "p", nsSelector("env", "prod"), protects(1)), "shop", labels.Set{"env": "dev"}, false},
		{"cluster: matchLabels, nil labels", clusterPolicy(t, "p", nsSelector("env", "prod"), protects(1)), "shop", nil, false},
		{"cluster: namespace name is irrelevant", clusterPolicy(t, "p", nsSelector("env", "prod"), protects(1)), "", labels.Set{"env": "prod"}, true},
		{"cluster: NotIn, nil labels", clusterPolicy(t, "p", nsSelectorExpr("env", metav1.LabelSelectorOpNotIn, "dev"), protects(1)), "shop", nil, true},
		{"cluster: NotIn, excluded", clusterPolicy(t, "p", nsSelectorExpr("env", metav1.LabelSelectorOpNotIn, "dev"), protects(1)), "shop", labels.Set{"env": "dev"}, false},
		{"cluster: Exists", clusterPolicy(t, "p", nsSelectorExpr("mesh", metav1.LabelSelectorOpExists), protects(1)), "shop", labels.Set{"mesh": ""}, true},
		{"cluster: kubernetes.io/metadata.name", clusterPolicy(t, "p", nsSelector("kubernetes.io/metadata.name", "shop"), protects(1)), "shop", labels.Set{"kubernetes.io/metadata.name": "shop"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.AppliesToNamespace(tt.namespace, tt.nsLabels); got != tt.want {
				t.Errorf("AppliesToNamespace(%q, %v) = %v, want %v", tt.namespace, tt.nsLabels, got, tt.want)
			}
		})
	}
}

func TestSelectsOnlyProtected(t *testing.T) {
	in := metav1.LabelSelectorOpIn
	notIn := metav1.LabelSelectorOpNotIn
	exists := metav1.LabelSelectorOpExists
	doesNotExist := metav1.LabelSelectorOpDoesNotExist
	tests := []struct {
		name   string
		policy []specOpt
		svc    map[string]string
		want   bool
	}{
		{"matchLabels: equal", []specOpt{podSelector("app", "cart")}, kv("app", "cart"), true},
		{"matchLabels: service selector is a superset", []specOpt{podSelector("app", "cart")}, kv("app", "cart", "tier", "web"), true},
		{"matchLabels: service selector is a subset", []specOpt{podSelector("app", "cart", "mesh", "envoy")}, kv("app", "cart"), false},
		{"matchLabels: same key, other value", []specOpt{podSelector("app", "cart")}, kv("app", "shop"), false},
		{"matchLabels: disjoint keys", []specOpt{podSelector("app", "cart")}, kv("tier", "web"), false},
		{"matchLabels: several, all implied", []specOpt{podSelector("app", "cart", "mesh", "envoy")}, kv("mesh", "envoy", "app", "cart", "v", "1"), true},
		{"In: first value", []specOpt{podSelectorExpr("app", in, "cart", "checkout")}, kv("app", "cart"), true},
		{"In: second value", []specOpt{podSelectorExpr("app", in, "cart", "checkout")}, kv("app", "checkout"), true},
		{"In: value not listed", []specOpt{podSelectorExpr("app", in, "cart", "checkout")}, kv("app", "db"), false},
		{"In: key missing", []specOpt{podSelectorExpr("app", in, "cart")}, kv("tier", "web"), false},
		{"Exists: key present", []specOpt{podSelectorExpr("sidecar.istio.io/inject", exists)}, kv("sidecar.istio.io/inject", "true"), true},
		{"Exists: key present with empty value", []specOpt{podSelectorExpr("mesh", exists)}, kv("mesh", ""), true},
		{"Exists: key missing", []specOpt{podSelectorExpr("mesh", exists)}, kv("app", "cart"), false},
		{"matchLabels and Exists", []specOpt{podSelector("app", "cart"), podSelectorExpr("mesh", exists)}, kv("app", "cart", "mesh", "x"), true},
		{"matchLabels and Exists, Exists missing", []specOpt{podSelector("app", "cart"), podSelectorExpr("mesh", exists)}, kv("app", "cart"), false},
		{"NotIn: never, even when the value is allowed", []specOpt{podSelectorExpr("app", notIn, "db")}, kv("app", "cart"), false},
		{"NotIn with matchLabels: never", []specOpt{podSelector("app", "cart"), podSelectorExpr("tier", notIn, "db")}, kv("app", "cart", "tier", "web"), false},
		{"DoesNotExist: never, even when the key is absent", []specOpt{podSelectorExpr("legacy", doesNotExist)}, kv("app", "cart"), false},
		{"DoesNotExist: never, service selector has the key", []specOpt{podSelectorExpr("legacy", doesNotExist)}, kv("legacy", "x"), false},
		{"NotIn: never, service selector has the excluded value", []specOpt{podSelectorExpr("app", notIn, "db")}, kv("app", "db"), false},
		{"empty policy selector: any non-empty Service selector", nil, kv("app", "anything"), true},
		{"empty policy selector: empty Service selector", nil, map[string]string{}, false},
		{"empty policy selector: nil Service selector", nil, nil, false},
		{"empty Service selector never implies", []specOpt{podSelector("app", "cart")}, map[string]string{}, false},
		{"nil Service selector never implies", []specOpt{podSelector("app", "cart")}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]specOpt{protects(15000)}, tt.policy...)
			for _, p := range []*Policy{nsPolicy(t, "shop", "p", opts...), clusterPolicy(t, "p", opts...)} {
				if got := p.SelectsOnlyProtected(tt.svc); got != tt.want {
					t.Errorf("%s: SelectsOnlyProtected(%v) = %v, want %v", p.Ref.Kind, tt.svc, got, tt.want)
				}
			}
		})
	}
}

// TestSelectsOnlyProtectedIsSound checks the promise of SelectsOnlyProtected
// on sample pods: when it holds, every pod the Service selects is selected
// by the policy.
func TestSelectsOnlyProtectedIsSound(t *testing.T) {
	policies := []*Policy{
		nsPolicy(t, "shop", "eq", podSelector("app", "cart"), protects(1)),
		nsPolicy(t, "shop", "in", podSelectorExpr("app", metav1.LabelSelectorOpIn, "cart", "web"), protects(1)),
		nsPolicy(t, "shop", "exists", podSelectorExpr("mesh", metav1.LabelSelectorOpExists), protects(1)),
		nsPolicy(t, "shop", "all", protects(1)),
	}
	services := []map[string]string{kv("app", "cart"), kv("app", "web", "mesh", "y"), kv("mesh", "x"), kv("tier", "db")}
	pods := []map[string]string{
		kv("app", "cart"), kv("app", "cart", "mesh", "x"), kv("app", "web", "mesh", "y"),
		kv("mesh", "x", "tier", "db"), kv("tier", "db"), {},
	}
	for _, p := range policies {
		for _, svc := range services {
			if !p.SelectsOnlyProtected(svc) {
				continue
			}
			for _, podLabels := range pods {
				if labels.SelectorFromSet(svc).Matches(labels.Set(podLabels)) && !p.Selector.Matches(labels.Set(podLabels)) {
					t.Errorf("%s: SelectsOnlyProtected(%v) but the Service selects unprotected pod %v", p.Ref, svc, podLabels)
				}
			}
		}
	}
}

func TestProtects(t *testing.T) {
	p := nsPolicy(t, "shop", "p",
		protects(15000, lpName("envoy-admin")),
		protects(15000, through(15100), lpName("stats")),
		protects(53, lpProtocol(corev1.ProtocolUDP), lpName("dns")))
	tests := []struct {
		name   string
		proto  corev1.Protocol
		port   int32
		want   PortRange
		wantOK bool
	}{
		{"first matching range wins", "TCP", 15000, PortRange{Protocol: "TCP", From: 15000, To: 15000, Name: "envoy-admin"}, true},
		{"range", "TCP", 15050, PortRange{Protocol: "TCP", From: 15000, To: 15100, Name: "stats"}, true},
		{"UDP", "UDP", 53, PortRange{Protocol: "UDP", From: 53, To: 53, Name: "dns"}, true},
		{"wrong protocol", "TCP", 53, PortRange{}, false},
		{"outside", "TCP", 15101, PortRange{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Protects(tt.proto, tt.port)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Protects(%s, %d) = %+v, %v; want %+v, %v", tt.proto, tt.port, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPolicyRefString(t *testing.T) {
	tests := []struct {
		ref  PolicyRef
		want string
	}{
		{PolicyRef{Kind: KindLoopbackService, Namespace: "shop", Name: "envoy-admin"}, "LoopbackService shop/envoy-admin"},
		{PolicyRef{Kind: KindClusterLoopbackService, Name: "platform-admin"}, "ClusterLoopbackService platform-admin"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.ref.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
