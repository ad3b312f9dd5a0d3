package rules

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

func withIP(ip string) podOpt {
	return func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}} }
}

func slice(name string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: testNamespace},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps,
	}
}

func slicePort(p int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Port: &p, Protocol: &proto}
}

func TestEvaluateEndpointSlice(t *testing.T) {
	const tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
	envoy := nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000), protects(6060, through(6069)))
	dns := nsPolicy(t, "shop", "dns", podSelector("app", "cart"), protects(5353, lpProtocol(udp)), enforce(v1alpha1.ActionWarn))
	cart := pod("cart-1", withLabels("app", "cart"), withIP("10.244.0.7"))
	web := pod("web-1", withLabels("app", "web"), withIP("10.244.0.8"))
	pods := []*corev1.Pod{cart, web}
	byIP := func(ip string) discoveryv1.Endpoint { return discoveryv1.Endpoint{Addresses: []string{ip}} }
	byRef := func(ip, name string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: name}}
	}
	found := func(field string, port int32, proto corev1.Protocol, action v1alpha1.EnforcementAction, policy string, contains ...string) wantFinding {
		return wantFinding{Kind: "EndpointSlice", Name: "manual", Field: field, Reason: ReasonEndpointTarget, Port: port, Protocol: proto,
			Action: action, Policies: []string{policy}, Related: "pod/cart-1", Contains: contains}
	}
	tests := []struct {
		name  string
		slice *discoveryv1.EndpointSlice
		want  []wantFinding
	}{
		{
			name:  "the pod IP and a protected port: caught",
			slice: slice("manual", []discoveryv1.EndpointPort{slicePort(8080, tcp), slicePort(15000, tcp)}, byIP("10.244.0.7")),
			want: []wantFinding{found("ports[1].port", 15000, tcp, v1alpha1.ActionDeny, envoyAdmin,
				`endpointslice "manual" routes port 15000/TCP at ports[1].port to pod "cart-1" (endpoints[0].addresses[0] 10.244.0.7); that port is declared loopback-only by LoopbackService shop/envoy-admin`)},
		},
		{
			name:  "a port inside a protected range, by targetRef (the IP is stale): caught",
			slice: slice("manual", []discoveryv1.EndpointPort{slicePort(6065, tcp)}, byRef("10.244.9.9", "cart-1")),
			want:  []wantFinding{found("ports[0].port", 6065, tcp, v1alpha1.ActionDeny, envoyAdmin)},
		},
		{
			name:  "UDP under a Warn policy: a warning",
			slice: slice("manual", []discoveryv1.EndpointPort{slicePort(5353, udp)}, byIP("10.244.0.7")),
			want:  []wantFinding{found("ports[0].port", 5353, udp, v1alpha1.ActionWarn, "LoopbackService shop/dns")},
		},
		{
			name:  "port unset routes every port of its protocol (TCP by default): one finding per policy protecting TCP",
			slice: slice("manual", []discoveryv1.EndpointPort{{}}, byIP("10.244.0.7")),
			want: []wantFinding{
				found("ports[0].port", 15000, tcp, v1alpha1.ActionDeny, envoyAdmin, "routes every port (ports[0].port is unset), so 15000/TCP, to pod"),
			},
		},
		{
			name:  "UDP port unset: the UDP policy",
			slice: slice("manual", []discoveryv1.EndpointPort{{Protocol: ptr.To(udp)}}, byIP("10.244.0.7")),
			want:  []wantFinding{found("ports[0].port", 5353, udp, v1alpha1.ActionWarn, "LoopbackService shop/dns")},
		},
		{
			name:  "TCP to the UDP-only port: admitted",
			slice: slice("manual", []discoveryv1.EndpointPort{slicePort(5353, tcp)}, byIP("10.244.0.7")),
		},
		{
			name:  "a pod no policy selects: admitted",
			slice: slice("manual", []discoveryv1.EndpointPort{slicePort(15000, tcp)}, byIP("10.244.0.8")),
		},
		{
			name:  "an address outside the cluster's pods: admitted",
			slice: slice("manual", []discoveryv1.EndpointPort{slicePort(15000, tcp)}, byIP("192.0.2.10")),
		},
		{
			name: "FQDN addresses: not pods, admitted",
			slice: func() *discoveryv1.EndpointSlice {
				s := slice("manual", []discoveryv1.EndpointPort{slicePort(15000, tcp)}, byIP("cart.example"))
				s.AddressType = discoveryv1.AddressTypeFQDN
				return s
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := shopEnv(envoy, dns)
			got := Evaluate(env, tt.slice, Cluster{Pods: views(pods...)})
			expectFindings(t, got, tt.want)
		})
	}
}

// TestEvaluateEndpointsAcrossNamespaces: every address is judged against
// both the pod its targetRef names and the pod that owns its IP, each with
// the policies of that pod's namespace, whatever namespace the slice is in.
func TestEvaluateEndpointsAcrossNamespaces(t *testing.T) {
	const tcp = corev1.ProtocolTCP
	envoy := nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000))
	mesh := clusterPolicy(t, "mesh", nsSelector("team", "shop"), podSelector("app", "cart"), protects(15000), enforce(v1alpha1.ActionWarn))
	cart := pod("cart-0", withLabels("app", "cart"), withIP("10.244.0.7"))
	web := pod("web-0", withLabels("app", "web"), withIP("10.244.0.8"))
	mine := pod("mine", inNamespace("attacker"), withLabels("app", "cart"), withIP("10.244.0.9"))
	host := pod("host", withLabels("app", "cart"), withIP("10.0.0.1"), withHostNetwork())
	done := pod("done", withLabels("app", "cart"), withIP("10.244.0.10"), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
	gone := pod("gone", withLabels("app", "cart"), withIP("10.244.0.11"), terminating())
	envs := map[string]*Env{
		"shop":     shopEnv(envoy, mesh),
		"attacker": newEnv("attacker", kv("team", "red"), mesh), // the cluster policy does not apply there
	}
	resolver := NewResolver(views(cart, web, mine, host, done, gone), func(ns string) *Env { return envs[ns] })
	ep := func(ip, refNS, refName string) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Addresses: []string{ip}}
		if refName != "" {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: refNS, Name: refName}
		}
		return e
	}
	inAttacker := func(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice { s.Namespace = "attacker"; return s }
	p15000 := []discoveryv1.EndpointPort{slicePort(15000, tcp)}
	both := []string{"ClusterLoopbackService mesh", envoyAdmin}
	tests := []struct {
		name  string
		slice *discoveryv1.EndpointSlice
		want  []wantFinding
	}{
		{
			name:  "hole 7: the protected pod's IP with a targetRef to an unprotected pod: the IP's owner is judged",
			slice: slice("spoof", p15000, ep("10.244.0.7", "", "web-0")),
			want: []wantFinding{{Field: "ports[0].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: tcp, Action: v1alpha1.ActionDeny,
				Policies: both, Related: "pod/cart-0", Contains: []string{`to pod "cart-0" (endpoints[0].addresses[0] 10.244.0.7)`}}},
		},
		{
			name:  "an unprotected pod's IP with a targetRef to the protected pod: the reference is judged",
			slice: slice("spoof", p15000, ep("10.244.0.8", "", "cart-0")),
			want:  []wantFinding{{Field: "ports[0].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: tcp, Action: v1alpha1.ActionDeny, Policies: both, Related: "pod/cart-0"}},
		},
		{
			name:  "hole 8: a slice in another namespace listing shop's pod IP: judged by shop's policies, the pod named with its namespace",
			slice: inAttacker(slice("steal", p15000, ep("10.244.0.7", "", ""))),
			want: []wantFinding{{Kind: "EndpointSlice", Name: "steal", Field: "ports[0].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: tcp, Action: v1alpha1.ActionDeny,
				Policies: both, Related: "pod/shop/cart-0", Contains: []string{`endpointslice "steal" routes port 15000/TCP at ports[0].port to pod "shop/cart-0"`}}},
		},
		{
			name:  "a targetRef to another namespace's pod: honoured",
			slice: inAttacker(slice("steal", p15000, ep("192.0.2.1", "shop", "cart-0"))),
			want:  []wantFinding{{Field: "ports[0].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: tcp, Action: v1alpha1.ActionDeny, Policies: both, Related: "pod/shop/cart-0"}},
		},
		{
			name:  "a targetRef without namespace is the slice's namespace, where no cart-0 lives",
			slice: inAttacker(slice("steal", p15000, ep("192.0.2.1", "", "cart-0"))),
		},
		{
			name:  "the attacker's own pod, where only a cluster policy that does not apply there selects it: admitted",
			slice: inAttacker(slice("mine", p15000, ep("10.244.0.9", "", "mine"))),
		},
		{
			name:  "an IP and a targetRef to the same pod: one finding",
			slice: slice("honest", p15000, ep("10.244.0.7", "shop", "cart-0")),
			want:  []wantFinding{{Field: "ports[0].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: tcp, Action: v1alpha1.ActionDeny, Policies: both, Related: "pod/cart-0"}},
		},
		{
			name:  "hostNetwork, finished and terminating pods own no pod IP",
			slice: inAttacker(slice("other", p15000, ep("10.0.0.1", "", ""), ep("10.244.0.10", "", ""), ep("10.244.0.11", "", ""))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The slice's own env: empty in attacker for the namespaced
			// policy; the resolver judges by the pods' namespaces.
			got := Evaluate(envs[tt.slice.Namespace], tt.slice, Cluster{Resolver: resolver})
			expectFindings(t, got, tt.want)
		})
	}
	t.Run("an Endpoints object in another namespace, with an empty env of its own", func(t *testing.T) {
		eps := &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "steal", Namespace: "elsewhere"},
			Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.7"}}, Ports: []corev1.EndpointPort{{Port: 15000}}}},
		}
		got := Evaluate(&Env{Namespace: "elsewhere"}, eps, Cluster{Resolver: resolver})
		expectFindings(t, got, []wantFinding{{Kind: "Endpoints", Field: "subsets[0].ports[0].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: tcp,
			Action: v1alpha1.ActionDeny, Policies: both, Related: "pod/shop/cart-0"}})
	})
}

func TestEndpointRefs(t *testing.T) {
	s := slice("s", nil,
		discoveryv1.Endpoint{Addresses: []string{"10.244.0.7", "::ffff:10.244.0.7"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "cart-0"}},
		discoveryv1.Endpoint{Addresses: []string{"2001:db8:0::1", "not-an-ip"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "other", Name: "x"}},
		discoveryv1.Endpoint{Addresses: []string{"10.244.0.8"}, TargetRef: &corev1.ObjectReference{Kind: "Node", Name: "n"}},
	)
	ips, pods := EndpointRefs(s)
	if want := []string{"10.244.0.7", "2001:db8::1", "10.244.0.8"}; !slices.Equal(ips, want) {
		t.Errorf("ips = %q, want %q", ips, want)
	}
	if want := []PodKey{{"shop", "cart-0"}, {"other", "x"}}; !slices.Equal(pods, want) {
		t.Errorf("pods = %v, want %v", pods, want)
	}
}

func TestControllerWrittenSlice(t *testing.T) {
	svc := service("cart", selector("app", "cart"))
	svc.UID = "svc-uid"
	owned := func(opts ...func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
		s := slice("cart-abcde", nil)
		s.Labels = map[string]string{discoveryv1.LabelManagedBy: EndpointSliceControllerName, discoveryv1.LabelServiceName: "cart"}
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "cart", UID: "svc-uid", Controller: ptr.To(true)}}
		for _, o := range opts {
			o(s)
		}
		return s
	}
	selectorless := service("cart")
	selectorless.UID = "svc-uid"
	tests := []struct {
		name  string
		slice *discoveryv1.EndpointSlice
		svc   *corev1.Service
		want  bool
	}{
		{"label, controller reference with the UID, and a selector: the controller's", owned(), svc, true},
		{"the label alone (hole 9): hand-written", owned(func(s *discoveryv1.EndpointSlice) { s.OwnerReferences = nil }), svc, false},
		{"another UID", owned(func(s *discoveryv1.EndpointSlice) { s.OwnerReferences[0].UID = "other" }), svc, false},
		{"not a controller reference", owned(func(s *discoveryv1.EndpointSlice) { s.OwnerReferences[0].Controller = nil }), svc, false},
		{"no such Service", owned(), nil, false},
		{"a Service without a selector", owned(), selectorless, false},
		{"the service-name label names another Service", owned(func(s *discoveryv1.EndpointSlice) { s.Labels[discoveryv1.LabelServiceName] = "web" }), svc, false},
		{"another managed-by (mirrored from Endpoints)", owned(func(s *discoveryv1.EndpointSlice) {
			s.Labels[discoveryv1.LabelManagedBy] = "endpointslicemirroring-controller.k8s.io"
		}), svc, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ControllerWrittenSlice(tt.slice, tt.svc); got != tt.want {
				t.Errorf("ControllerWrittenSlice = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateEndpoints(t *testing.T) {
	envoy := nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000))
	cart := pod("cart-1", withLabels("app", "cart"), withIP("10.244.0.7"))
	eps := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: testNamespace},
		Subsets: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.99"}}, Ports: []corev1.EndpointPort{{Port: 15000}}},
			{NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.0.7"}}, Ports: []corev1.EndpointPort{{Port: 8080}, {Port: 15000}}},
		},
	}
	got := Evaluate(shopEnv(envoy), eps, Cluster{Pods: views(cart)})
	expectFindings(t, got, []wantFinding{{
		Kind: "Endpoints", Name: "manual", Field: "subsets[1].ports[1].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: corev1.ProtocolTCP,
		Action: v1alpha1.ActionDeny, Policies: []string{envoyAdmin}, Related: "pod/cart-1",
		Contains: []string{`endpoints "manual" routes port 15000/TCP at subsets[1].ports[1].port to pod "cart-1" (subsets[1].notReadyAddresses[0] 10.244.0.7)`},
	}})
}

// TestReviewEndpointsFromANamespaceWithoutPolicies: the admission entry
// point judges a slice in a namespace where no policy applies by the
// policies of the pods it reaches (hole 8 through rules.Review, not only
// Evaluate).
func TestReviewEndpointsFromANamespaceWithoutPolicies(t *testing.T) {
	envoy := nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000))
	cart := pod("cart-0", withLabels("app", "cart"), withIP("10.244.0.7"))
	envs := map[string]*Env{"shop": shopEnv(envoy), "attacker": newEnv("attacker", kv("team", "red"))}
	resolver := NewResolver(views(cart), func(ns string) *Env { return envs[ns] })
	s := slice("steal", []discoveryv1.EndpointPort{slicePort(15000, corev1.ProtocolTCP)}, discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}})
	s.Namespace = "attacker"
	d := review(envs["attacker"], ReviewRequest{Operation: OperationCreate, Object: s}, Cluster{Resolver: resolver})
	if d.Action != v1alpha1.ActionDeny || !strings.Contains(d.Denial, `pod "shop/cart-0"`) {
		t.Fatalf("Review of a slice in a namespace without policies listing shop/cart-0's IP: got action %q denial %q, want Deny naming shop/cart-0", d.Action, d.Denial)
	}
}

// TestReviewHostileEndpointsFromANamespaceWithoutPolicies: a slice too
// large to review, in a namespace where no policy applies, is refused, not
// admitted unjudged: the pods it reaches may be protected elsewhere.
func TestReviewHostileEndpointsFromANamespaceWithoutPolicies(t *testing.T) {
	envoy := nsPolicy(t, "shop", "envoy-admin", podSelector("app", "cart"), protects(15000))
	envs := map[string]*Env{"shop": shopEnv(envoy), "attacker": newEnv("attacker", kv("team", "red"))}
	resolver := NewResolver(nil, func(ns string) *Env { return envs[ns] })
	var ports []discoveryv1.EndpointPort
	for i := range 100 {
		ports = append(ports, slicePort(int32(20000+i), corev1.ProtocolTCP))
	}
	var eps []discoveryv1.Endpoint
	for i := range 1000 {
		addrs := make([]string, 100)
		for j := range addrs {
			addrs[j] = fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j)
		}
		eps = append(eps, discoveryv1.Endpoint{Addresses: addrs})
	}
	s := slice("huge", ports, eps...)
	s.Namespace = "attacker"
	d := review(envs["attacker"], ReviewRequest{Operation: OperationCreate, Object: s}, Cluster{Resolver: resolver})
	if d.Action != v1alpha1.ActionDeny {
		t.Fatalf("Review of a slice beyond the work limit in a namespace without policies: got action %q, want Deny", d.Action)
	}
}

func TestControllerWrittenEndpoints(t *testing.T) {
	svc := service("cart", selector("app", "cart"))
	eps := func(name string) *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name}}
	}
	other := service("cart", selector("app", "cart"))
	other.Namespace = "billing"
	tests := []struct {
		name string
		eps  *corev1.Endpoints
		svc  *corev1.Service
		want bool
	}{
		{"named after a Service with a selector: the endpoints controller's", eps("cart"), svc, true},
		{"no such Service", eps("cart"), nil, false},
		{"a Service without a selector (hand-written endpoints)", eps("cart"), service("cart"), false},
		{"an ExternalName Service", eps("cart"), service("cart", selector("app", "cart"), externalName("example.com")), false},
		{"another name", eps("cart-admin"), svc, false},
		{"another namespace", eps("cart"), other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ControllerWrittenEndpoints(tt.eps, tt.svc); got != tt.want {
				t.Errorf("ControllerWrittenEndpoints = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAuditSkipsTheControlPlanesEndpoints: a snapshot read from a dump
// holds the Service's own Endpoints and EndpointSlice; Audit judges the
// Service and the hand-written slice, not the controllers' copies.
func TestAuditSkipsTheControlPlanesEndpoints(t *testing.T) {
	env := shopEnv(nsPolicy(t, testNamespace, "envoy-admin", protects(15000)))
	cart := pod("cart-1", withLabels("app", "cart"), withIP("10.244.0.7"))
	svc := service("cart", selector("app", "cart"), servicePort(9000, targetPort(15000)))
	svc.UID = "svc-uid"
	ep := discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}}
	owned := slice("cart-abcde", []discoveryv1.EndpointPort{slicePort(15000, corev1.ProtocolTCP)}, ep)
	owned.Labels = map[string]string{discoveryv1.LabelManagedBy: EndpointSliceControllerName, discoveryv1.LabelServiceName: "cart"}
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "cart", UID: "svc-uid", Controller: ptr.To(true)}}
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "cart"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.7"}}, Ports: []corev1.EndpointPort{{Port: 15000}}}}}
	handWritten := slice("cart-direct", []discoveryv1.EndpointPort{slicePort(15000, corev1.ProtocolTCP)}, ep)
	s := Snapshot{Env: env}
	for _, o := range []runtime.Object{cart, svc, owned, eps, handWritten} {
		s.Add(o)
	}
	var judged []string
	for _, j := range Audit(s).Judged {
		if len(j.Findings) > 0 {
			judged = append(judged, j.Findings[0].Object.String())
		}
	}
	want := []string{`pod "cart-1"`, `service "cart"`, `endpointslice "cart-direct"`}
	if !reflect.DeepEqual(judged, want) {
		t.Errorf("findings on %q, want %q", judged, want)
	}
}
