package rules

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			got := Evaluate(env, tt.slice, Cluster{Pods: pods})
			expectFindings(t, got, tt.want)
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
	got := Evaluate(shopEnv(envoy), eps, Cluster{Pods: []*corev1.Pod{cart}})
	expectFindings(t, got, []wantFinding{{
		Kind: "Endpoints", Name: "manual", Field: "subsets[1].ports[1].port", Reason: ReasonEndpointTarget, Port: 15000, Protocol: corev1.ProtocolTCP,
		Action: v1alpha1.ActionDeny, Policies: []string{envoyAdmin}, Related: "pod/cart-1",
		Contains: []string{`endpoints "manual" routes port 15000/TCP at subsets[1].ports[1].port to pod "cart-1" (subsets[1].notReadyAddresses[0] 10.244.0.7)`},
	}})
}
