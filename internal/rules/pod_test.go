package rules

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

const (
	envoyAdmin    = "LoopbackService shop/envoy-admin"
	platformAdmin = "ClusterLoopbackService platform-admin"
)

func TestEvaluatePod(t *testing.T) {
	const (
		tcp   = corev1.ProtocolTCP
		udp   = corev1.ProtocolUDP
		deny  = v1alpha1.ActionDeny
		warn  = v1alpha1.ActionWarn
		audit = v1alpha1.ActionAudit
	)
	// envoy protects 15000/TCP of app=cart pods in shop.
	envoy := func(opts ...specOpt) *Policy {
		return nsPolicy(t, "shop", "envoy-admin", append([]specOpt{podSelector("app", "cart"), protects(15000)}, opts...)...)
	}
	cart := func(opts ...podOpt) *corev1.Pod {
		return pod("cart-7d9", append([]podOpt{withLabels("app", "cart")}, opts...)...)
	}
	containerPort := func(path string, p int32, proto corev1.Protocol, ctr string, action v1alpha1.EnforcementAction, policies ...string) wantFinding {
		return wantFinding{Kind: "Pod", Name: "cart-7d9", Field: path, Reason: ReasonContainerPort, Container: ctr,
			Port: p, Protocol: proto, Action: action, Policies: policies}
	}

	tests := []struct {
		name     string
		policies []*Policy
		env      *Env // defaults to shopEnv(policies...)
		pod      *corev1.Pod
		want     []wantFinding
	}{
		{
			name:     "containerPort in the second container: exact message",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("app", port(8080)), withContainer("envoy", port(15000))),
			want: []wantFinding{{
				Kind: "Pod", Name: "cart-7d9", Field: "spec.containers[1].ports[0].containerPort", Reason: ReasonContainerPort,
				Container: "envoy", Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin},
				Message: `pod "cart-7d9" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by LoopbackService shop/envoy-admin; remove the containerPort (the container must bind 127.0.0.1)`,
			}},
		},
		{
			name:     "unprotected ports only",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("app", port(8080), port(15001), port(14999))),
		},
		{
			name:     "second port of a container",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("envoy", port(8080), port(15000))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[1].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "same port in two containers: two findings, in order",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("a", port(15000)), withContainer("b", port(15000))),
			want: []wantFinding{
				containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "a", deny, envoyAdmin),
				containerPort("spec.containers[1].ports[0].containerPort", 15000, tcp, "b", deny, envoyAdmin),
			},
		},
		{
			name:     "no containers",
			policies: []*Policy{envoy()},
			pod:      cart(),
		},
		{
			name:     "init container",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("app"), withInitContainer("setup", port(15000))),
			want: []wantFinding{{
				Field: "spec.initContainers[0].ports[0].containerPort", Reason: ReasonContainerPort, Container: "setup",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin},
				Message: `pod "cart-7d9" init container "setup": port 15000/TCP at spec.initContainers[0].ports[0].containerPort is declared loopback-only by LoopbackService shop/envoy-admin; remove the containerPort (the init container must bind 127.0.0.1)`,
			}},
		},
		{
			name:     "native sidecar (restartPolicy Always)",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("app", port(8080)), withInitContainer("setup"), withSidecar("envoy", port(15000))),
			want: []wantFinding{{
				Field: "spec.initContainers[1].ports[0].containerPort", Reason: ReasonContainerPort, Container: "envoy",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin},
				Message: `pod "cart-7d9" sidecar container "envoy": port 15000/TCP at spec.initContainers[1].ports[0].containerPort is declared loopback-only by LoopbackService shop/envoy-admin; remove the containerPort (the sidecar must bind 127.0.0.1)`,
			}},
		},
		{
			name:     "containers come before init containers",
			policies: []*Policy{envoy()},
			pod:      cart(withSidecar("envoy", port(15000)), withContainer("app", port(15000))),
			want: []wantFinding{
				containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "app", deny, envoyAdmin),
				containerPort("spec.initContainers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin),
			},
		},
		{
			name:     "UDP policy, TCP port: no finding",
			policies: []*Policy{nsPolicy(t, "shop", "dns", podSelector("app", "cart"), protects(53, lpProtocol(udp)))},
			pod:      cart(withContainer("dns", port(53, portProtocol(tcp)))),
		},
		{
			name:     "UDP policy, port with default protocol: no finding",
			policies: []*Policy{nsPolicy(t, "shop", "dns", podSelector("app", "cart"), protects(53, lpProtocol(udp)))},
			pod:      cart(withContainer("dns", port(53))),
		},
		{
			name:     "UDP policy, UDP port",
			policies: []*Policy{nsPolicy(t, "shop", "dns", podSelector("app", "cart"), protects(53, lpProtocol(udp)))},
			pod:      cart(withContainer("dns", port(53, portProtocol(udp)))),
			want: []wantFinding{{
				Field: "spec.containers[0].ports[0].containerPort", Reason: ReasonContainerPort, Container: "dns",
				Port: 53, Protocol: udp, Action: deny, Policies: []string{"LoopbackService shop/dns"},
				Contains: []string{"port 53/UDP at spec.containers[0].ports[0].containerPort"},
			}},
		},
		{
			name:     "default policy protocol, default port protocol: TCP",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("envoy", port(15000))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "default policy protocol, explicit TCP port",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("envoy", port(15000, portProtocol(tcp)))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "default policy protocol, UDP port: no finding",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("envoy", port(15000, portProtocol(udp)))),
		},
		{
			name:     "explicit TCP policy, default port protocol",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000, lpProtocol(tcp)))},
			pod:      cart(withContainer("envoy", port(15000))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "range: start, inside and end; not the ports just outside",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000, through(15010)))},
			pod:      cart(withContainer("envoy", port(14999), port(15000), port(15005), port(15010), port(15011))),
			want: []wantFinding{
				containerPort("spec.containers[0].ports[1].containerPort", 15000, tcp, "envoy", deny, envoyAdmin),
				containerPort("spec.containers[0].ports[2].containerPort", 15005, tcp, "envoy", deny, envoyAdmin),
				containerPort("spec.containers[0].ports[3].containerPort", 15010, tcp, "envoy", deny, envoyAdmin),
			},
		},
		{
			name:     "hostPort: exact message",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("envoy", port(15000, hostPort(25000)))),
			want: []wantFinding{{
				Field: "spec.containers[0].ports[0].containerPort", Reason: ReasonHostPort, Container: "envoy",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin},
				Message: `pod "cart-7d9" container "envoy": port 15000/TCP at spec.containers[0].ports[0].containerPort, published on the node by hostPort 25000 at spec.containers[0].ports[0].hostPort, is declared loopback-only by LoopbackService shop/envoy-admin; remove the containerPort and its hostPort (the container must bind 127.0.0.1)`,
			}},
		},
		{
			name:     "hostPort on a sidecar",
			policies: []*Policy{envoy()},
			pod:      cart(withSidecar("envoy", port(15000, hostPort(15000)))),
			want: []wantFinding{{
				Field: "spec.initContainers[0].ports[0].containerPort", Reason: ReasonHostPort, Container: "envoy",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin},
				Contains: []string{`sidecar container "envoy"`, "hostPort 15000 at spec.initContainers[0].ports[0].hostPort", "(the sidecar must bind 127.0.0.1)"},
			}},
		},
		{
			name:     "hostPort of an unprotected containerPort: no finding",
			policies: []*Policy{envoy()},
			pod:      cart(withContainer("app", port(8080, hostPort(15000)))),
		},
		{
			name:     "hostNetwork, hostNetwork Deny: the policy's action",
			policies: []*Policy{envoy(protects(15010, through(15020)), enforce(warn))},
			pod:      cart(withHostNetwork(), withContainer("app", port(8080))),
			want: []wantFinding{{
				Kind: "Pod", Name: "cart-7d9", Field: "spec.hostNetwork", Reason: ReasonHostNetwork,
				Action: warn, Policies: []string{envoyAdmin},
				Message: `pod "cart-7d9" uses the node's network (hostNetwork: true at spec.hostNetwork), so its loopback-only ports 15000/TCP, 15010-15020/TCP, declared by LoopbackService shop/envoy-admin, live on the node's loopback, shared with every hostNetwork pod and node process, and no NetworkPolicy applies; set hostNetwork: false`,
			}},
		},
		{
			name:     "hostNetwork, hostNetwork Deny, action defaulted to Deny",
			policies: []*Policy{envoy()},
			pod:      cart(withHostNetwork()),
			want:     []wantFinding{{Field: "spec.hostNetwork", Reason: ReasonHostNetwork, Action: deny, Policies: []string{envoyAdmin}}},
		},
		{
			name:     "hostNetwork, hostNetwork Audit: Audit whatever the action",
			policies: []*Policy{envoy(enforce(deny), hostNetworkAction(v1alpha1.HostNetworkAudit))},
			pod:      cart(withHostNetwork()),
			want: []wantFinding{{Field: "spec.hostNetwork", Reason: ReasonHostNetwork, Action: audit, Policies: []string{envoyAdmin},
				// What Audit means, not a fix the policy does not ask for.
				Contains: []string{"admitted and only reported"}, Excludes: []string{"set hostNetwork: false"}}},
		},
		{
			name:     "hostNetwork, Deny: the fix",
			policies: []*Policy{envoy(enforce(deny))},
			pod:      cart(withHostNetwork()),
			want: []wantFinding{{Field: "spec.hostNetwork", Reason: ReasonHostNetwork, Action: deny, Policies: []string{envoyAdmin},
				Contains: []string{"; set hostNetwork: false"}, Excludes: []string{"only reported"}}},
		},
		{
			name:     "hostNetwork and a protected containerPort: both, hostNetwork last",
			policies: []*Policy{envoy()},
			pod:      cart(withHostNetwork(), withContainer("envoy", port(15000, hostPort(15000)))),
			want: []wantFinding{
				{Field: "spec.containers[0].ports[0].containerPort", Reason: ReasonHostPort, Container: "envoy", Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin}},
				{Field: "spec.hostNetwork", Reason: ReasonHostNetwork, Action: deny, Policies: []string{envoyAdmin}},
			},
		},
		{
			name:     "hostNetwork of an unselected pod: no finding",
			policies: []*Policy{envoy()},
			pod:      pod("web-1", withLabels("app", "web"), withHostNetwork()),
		},
		{
			name:     "hostNetwork in a namespace the policy does not apply to: no finding",
			policies: []*Policy{nsPolicy(t, "billing", "envoy-admin", podSelector("app", "cart"), protects(15000))},
			pod:      cart(withHostNetwork()),
		},
		{
			name:     "hostNetwork, two policies: merged, strictest action",
			policies: []*Policy{envoy(enforce(warn)), nsPolicy(t, "shop", "audit", podSelector("app", "cart"), protects(15000), hostNetworkAction(v1alpha1.HostNetworkAudit))},
			pod:      cart(withHostNetwork()),
			want: []wantFinding{{
				Field: "spec.hostNetwork", Reason: ReasonHostNetwork, Action: warn, Policies: []string{"LoopbackService shop/audit", envoyAdmin},
				Contains: []string{"declared by LoopbackService shop/audit and LoopbackService shop/envoy-admin"},
			}},
		},
		{
			name:     "matchExpressions In selects the pod",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelectorExpr("app", metav1.LabelSelectorOpIn, "web", "cart"), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "matchExpressions In does not select the pod",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelectorExpr("app", metav1.LabelSelectorOpIn, "web", "db"), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
		},
		{
			name:     "matchExpressions Exists",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelectorExpr("sidecar.istio.io/status", metav1.LabelSelectorOpExists), protects(15000))},
			pod:      cart(withLabels("sidecar.istio.io/status", "injected"), withContainer("envoy", port(15000))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "matchExpressions NotIn selects a pod without the value",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelectorExpr("app", metav1.LabelSelectorOpNotIn, "legacy"), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
			want:     []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "matchExpressions DoesNotExist excludes a pod with the key",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", podSelectorExpr("app", metav1.LabelSelectorOpDoesNotExist), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
		},
		{
			name:     "empty podSelector selects every pod, even without labels",
			policies: []*Policy{nsPolicy(t, "shop", "envoy-admin", protects(15000))},
			pod:      pod("bare", withContainer("envoy", port(15000))),
			want:     []wantFinding{{Name: "bare", Field: "spec.containers[0].ports[0].containerPort", Reason: ReasonContainerPort, Container: "envoy", Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin}}},
		},
		{
			name:     "labels do not match",
			policies: []*Policy{envoy()},
			pod:      pod("web-1", withLabels("app", "web"), withContainer("envoy", port(15000))),
		},
		{
			name:     "pod without labels",
			policies: []*Policy{envoy()},
			pod:      pod("web-1", withContainer("envoy", port(15000))),
		},
		{
			name:     "namespaced policy of another namespace",
			policies: []*Policy{nsPolicy(t, "billing", "envoy-admin", podSelector("app", "cart"), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
		},
		{
			name:     "cluster policy, namespaceSelector matches",
			policies: []*Policy{clusterPolicy(t, "platform-admin", nsSelector("env", "prod"), podSelector("app", "cart"), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
			want: []wantFinding{{
				Field: "spec.containers[0].ports[0].containerPort", Reason: ReasonContainerPort, Container: "envoy",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{platformAdmin},
				Message: `pod "cart-7d9" container "envoy": port 15000/TCP at spec.containers[0].ports[0].containerPort is declared loopback-only by ClusterLoopbackService platform-admin; remove the containerPort (the container must bind 127.0.0.1)`,
			}},
		},
		{
			name:     "cluster policy, namespaceSelector does not match",
			policies: []*Policy{clusterPolicy(t, "platform-admin", nsSelector("env", "dev"), podSelector("app", "cart"), protects(15000))},
			pod:      cart(withContainer("envoy", port(15000))),
		},
		{
			name: "cluster policy, namespace without labels",
			env:  newEnv("shop", nil, clusterPolicy(t, "platform-admin", nsSelector("env", "prod"), podSelector("app", "cart"), protects(15000))),
			pod:  cart(withContainer("envoy", port(15000))),
		},
		{
			name: "cluster policy with {} namespaceSelector, namespace without labels",
			env:  newEnv("shop", nil, clusterPolicy(t, "platform-admin", podSelector("app", "cart"), protects(15000))),
			pod:  cart(withContainer("envoy", port(15000))),
			want: []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, platformAdmin)},
		},
		{
			name: "two policies on one port, Deny and Warn: one finding, Deny",
			policies: []*Policy{
				envoy(enforce(warn)),
				clusterPolicy(t, "platform-admin", podSelector("app", "cart"), protects(15000, through(15100)), enforce(deny)),
			},
			pod: cart(withContainer("app"), withContainer("envoy", port(15000))),
			want: []wantFinding{{
				Field: "spec.containers[1].ports[0].containerPort", Reason: ReasonContainerPort, Container: "envoy",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{platformAdmin, envoyAdmin},
				Message: `pod "cart-7d9" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by ClusterLoopbackService platform-admin and LoopbackService shop/envoy-admin; remove the containerPort (the container must bind 127.0.0.1)`,
			}},
		},
		{
			name: "two policies on one port, Warn and Audit: Warn",
			policies: []*Policy{
				nsPolicy(t, "shop", "b-audit", podSelector("app", "cart"), protects(15000), enforce(audit)),
				nsPolicy(t, "shop", "a-warn", podSelector("app", "cart"), protects(15000), enforce(warn)),
			},
			pod: cart(withContainer("envoy", port(15000))),
			want: []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", warn,
				"LoopbackService shop/a-warn", "LoopbackService shop/b-audit")},
		},
		{
			name: "two policies, only one selects the pod",
			policies: []*Policy{
				envoy(),
				nsPolicy(t, "shop", "web", podSelector("app", "web"), protects(15000), enforce(warn)),
			},
			pod:  cart(withContainer("envoy", port(15000))),
			want: []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name: "one policy in two sets: named once",
			env: func() *Env {
				p := envoy()
				return &Env{Namespace: "shop", Sets: []*Set{NewSet([]*Policy{p}), NewSet([]*Policy{p})}}
			}(),
			pod:  cart(withContainer("envoy", port(15000))),
			want: []wantFinding{containerPort("spec.containers[0].ports[0].containerPort", 15000, tcp, "envoy", deny, envoyAdmin)},
		},
		{
			name:     "generateName pod",
			policies: []*Policy{envoy()},
			pod:      cart(generateName("cart-"), withContainer("envoy", port(15000))),
			want: []wantFinding{{
				Name: "cart-*", Field: "spec.containers[0].ports[0].containerPort", Reason: ReasonContainerPort, Container: "envoy",
				Port: 15000, Protocol: tcp, Action: deny, Policies: []string{envoyAdmin},
				Contains: []string{`pod "cart-*" container "envoy"`},
			}},
		},
		{
			name: "empty env",
			env:  &Env{Namespace: "shop"},
			pod:  cart(withHostNetwork(), withContainer("envoy", port(15000))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = shopEnv(tt.policies...)
			}
			expectFindings(t, EvaluatePod(env, podTemplate(t, tt.pod)), tt.want)
		})
	}
}

func TestEvaluatePodNilSpec(t *testing.T) {
	env := shopEnv(nsPolicy(t, "shop", "envoy-admin", protects(15000)))
	pt := PodTemplate{Object: ObjectRef{Kind: "Pod", Namespace: "shop", Name: "x"}}
	if got := EvaluatePod(env, pt); got != nil {
		t.Errorf("EvaluatePod(nil spec) = %v, want nil", got)
	}
	if got := EvaluatePodServices(env, pt, []*corev1.Service{service("s", selector("a", "b"), servicePort(15000))}); got != nil {
		t.Errorf("EvaluatePodServices(nil spec) = %v, want nil", got)
	}
}

func TestPodTemplateOf(t *testing.T) {
	ctr := withContainer("envoy", port(15000))
	lbl := withLabels("app", "cart")
	nilTemplateRC := &corev1.ReplicationController{ObjectMeta: objectMeta("legacy")}
	tests := []struct {
		name       string
		obj        runtime.Object
		wantOK     bool
		wantObject ObjectRef
		wantPath   string
	}{
		{"Pod", pod("cart-7d9", lbl, ctr), true, ObjectRef{"Pod", "shop", "cart-7d9"}, "spec"},
		{"Pod with generateName", pod("", generateName("cart-"), lbl, ctr), true, ObjectRef{"Pod", "shop", "cart-*"}, "spec"},
		{"Deployment", deployment("cart", lbl, ctr), true, ObjectRef{"Deployment", "shop", "cart"}, "spec.template.spec"},
		{"ReplicaSet", replicaSet("cart-7d9", lbl, ctr), true, ObjectRef{"ReplicaSet", "shop", "cart-7d9"}, "spec.template.spec"},
		{"StatefulSet", statefulSet("cart", lbl, ctr), true, ObjectRef{"StatefulSet", "shop", "cart"}, "spec.template.spec"},
		{"DaemonSet", daemonSet("cart", lbl, ctr), true, ObjectRef{"DaemonSet", "shop", "cart"}, "spec.template.spec"},
		{"Job", job("cart", lbl, ctr), true, ObjectRef{"Job", "shop", "cart"}, "spec.template.spec"},
		{"CronJob", cronJob("cart", lbl, ctr), true, ObjectRef{"CronJob", "shop", "cart"}, "spec.jobTemplate.spec.template.spec"},
		{"ReplicationController", replicationController("cart", lbl, ctr), true, ObjectRef{"ReplicationController", "shop", "cart"}, "spec.template.spec"},
		{"ReplicationController without template", nilTemplateRC, false, ObjectRef{}, ""},
		{"ConfigMap", &corev1.ConfigMap{ObjectMeta: objectMeta("cart")}, false, ObjectRef{}, ""},
		{"Service", service("cart", selector("app", "cart")), false, ObjectRef{}, ""},
		{"Deployment list", &appsv1.DeploymentList{}, false, ObjectRef{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, ok := PodTemplateOf(tt.obj)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if pt.Spec != nil || pt.SpecPath != nil {
					t.Errorf("not ok but template %+v", pt)
				}
				return
			}
			if pt.Object != tt.wantObject {
				t.Errorf("Object = %+v, want %+v", pt.Object, tt.wantObject)
			}
			if got := pt.SpecPath.String(); got != tt.wantPath {
				t.Errorf("SpecPath = %q, want %q", got, tt.wantPath)
			}
			if pt.Labels["app"] != "cart" || len(pt.Labels) != 1 {
				t.Errorf("Labels = %v, want app=cart", pt.Labels)
			}
			if pt.Spec == nil || len(pt.Spec.Containers) != 1 || pt.Spec.Containers[0].Name != "envoy" {
				t.Errorf("Spec = %+v, want the template's spec", pt.Spec)
			}
		})
	}
}

func TestPodTemplateOfSharesTheObject(t *testing.T) {
	d := deployment("cart", withContainer("envoy", port(15000)))
	pt, _ := PodTemplateOf(d)
	if pt.Spec != &d.Spec.Template.Spec {
		t.Error("PodTemplateOf(Deployment).Spec does not point into the Deployment")
	}
}

// TestEvaluateWorkloads runs every workload kind through Evaluate.
func TestEvaluateWorkloads(t *testing.T) {
	env := shopEnv(nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000)))
	opts := []podOpt{withLabels("app", "cart"), withContainer("app", port(8080)), withContainer("envoy", port(15000))}
	finding := func(kind, name, specPath string) []wantFinding {
		field := specPath + ".containers[1].ports[0].containerPort"
		return []wantFinding{{
			Kind: kind, Name: name, Field: field, Reason: ReasonContainerPort, Container: "envoy",
			Port: 15000, Protocol: corev1.ProtocolTCP, Action: v1alpha1.ActionDeny, Policies: []string{envoyAdmin},
		}}
	}
	tests := []struct {
		name        string
		obj         runtime.Object
		want        []wantFinding
		wantMessage string
	}{
		{"Pod", pod("cart-7d9", opts...), finding("Pod", "cart-7d9", "spec"), ""},
		{
			"Deployment", deployment("cart", opts...), finding("Deployment", "cart", "spec.template.spec"),
			`deployment "cart" container "envoy": port 15000/TCP at spec.template.spec.containers[1].ports[0].containerPort is declared loopback-only by LoopbackService shop/envoy-admin; remove the containerPort (the container must bind 127.0.0.1)`,
		},
		{"ReplicaSet", replicaSet("cart-7d9", opts...), finding("ReplicaSet", "cart-7d9", "spec.template.spec"), ""},
		{"StatefulSet", statefulSet("cart", opts...), finding("StatefulSet", "cart", "spec.template.spec"), ""},
		{"DaemonSet", daemonSet("cart", opts...), finding("DaemonSet", "cart", "spec.template.spec"), ""},
		{"Job", job("cart", opts...), finding("Job", "cart", "spec.template.spec"), ""},
		{
			"CronJob", cronJob("cart", opts...), finding("CronJob", "cart", "spec.jobTemplate.spec.template.spec"),
			`cronjob "cart" container "envoy": port 15000/TCP at spec.jobTemplate.spec.template.spec.containers[1].ports[0].containerPort is declared loopback-only by LoopbackService shop/envoy-admin; remove the containerPort (the container must bind 127.0.0.1)`,
		},
		{"ReplicationController", replicationController("cart", opts...), finding("ReplicationController", "cart", "spec.template.spec"), ""},
		{"ReplicationController without template", &corev1.ReplicationController{ObjectMeta: objectMeta("cart")}, nil, ""},
		{"ConfigMap", &corev1.ConfigMap{ObjectMeta: objectMeta("cart"), Data: map[string]string{"port": "15000"}}, nil, ""},
		{"Deployment not selected", deployment("web", withLabels("app", "web"), withContainer("envoy", port(15000))), nil, ""},
		{
			"Deployment with hostNetwork",
			deployment("cart", withLabels("app", "cart"), withHostNetwork()),
			[]wantFinding{{Kind: "Deployment", Name: "cart", Field: "spec.template.spec.hostNetwork", Reason: ReasonHostNetwork, Action: v1alpha1.ActionDeny, Policies: []string{envoyAdmin}}},
			"",
		},
		{
			"CronJob with hostPort",
			cronJob("cart", withLabels("app", "cart"), withContainer("envoy", port(15000, hostPort(15000)))),
			[]wantFinding{{
				Kind: "CronJob", Name: "cart", Field: "spec.jobTemplate.spec.template.spec.containers[0].ports[0].containerPort", Reason: ReasonHostPort, Container: "envoy",
				Port: 15000, Protocol: corev1.ProtocolTCP, Action: v1alpha1.ActionDeny, Policies: []string{envoyAdmin},
				Contains: []string{"hostPort 15000 at spec.jobTemplate.spec.template.spec.containers[0].ports[0].hostPort"},
			}},
			"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantMessage != "" {
				tt.want[0].Message = tt.wantMessage
			}
			expectFindings(t, Evaluate(env, tt.obj, Cluster{}), tt.want)
		})
	}
}

func TestEvaluateEmptyEnv(t *testing.T) {
	objs := []runtime.Object{
		pod("cart", withLabels("app", "cart"), withHostNetwork(), withContainer("envoy", port(15000))),
		deployment("cart", withLabels("app", "cart"), withContainer("envoy", port(15000))),
		service("cart", selector("app", "cart"), servicePort(15000)),
	}
	envs := map[string]*Env{
		"no sets":           {Namespace: "shop"},
		"nil set":           {Namespace: "shop", Sets: []*Set{nil}},
		"empty sets":        {Namespace: "shop", Sets: []*Set{NewSet(nil), NewSet([]*Policy{})}},
		"newEnv, no policy": newEnv("shop", kv("env", "prod")),
	}
	for name, env := range envs {
		t.Run(name, func(t *testing.T) {
			if !env.Empty() {
				t.Fatal("Empty() = false")
			}
			for _, obj := range objs {
				if got := Evaluate(env, obj, Cluster{}); got != nil {
					t.Errorf("Evaluate(%T) = %v, want nil", obj, got)
				}
			}
		})
	}
}
