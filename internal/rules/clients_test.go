package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

func TestUnexpectedClients(t *testing.T) {
	if ReasonUnexpectedClient != v1alpha1.ReasonUnexpectedClient {
		t.Fatalf("the engine's reason %q differs from the condition's %q", ReasonUnexpectedClient, v1alpha1.ReasonUnexpectedClient)
	}
	end := int32(15010)
	ports := []v1alpha1.LoopbackPort{
		{Port: 15000, Clients: []string{"app"}},
		{Port: 15001, EndPort: &end},
		{Port: 15020, Protocol: "UDP", Clients: []string{"app"}},
		{Port: 15000, EndPort: &end, Clients: []string{"sidecar"}, Protocol: "TCP"},
	}
	tests := []struct {
		name    string
		ports   []v1alpha1.LoopbackPort
		clients []v1alpha1.BindClient
		want    []ClientFinding
	}{
		{"a listed container is expected", ports[:1], []v1alpha1.BindClient{{Port: 15000, Container: "app", Process: "curl"}}, nil},
		{"another container is not", ports[:1], []v1alpha1.BindClient{{Port: 15000, Container: "debug", Process: "nc"}}, []ClientFinding{{
			Port: 15000, Container: "debug", Process: "nc", Field: "spec.ports[0].clients",
			Message: `port 15000/TCP: container "debug" (nc) is connected on loopback, but spec.ports[0].clients lists only ["app"]`}}},
		{"unset clients: any container", ports[1:2], []v1alpha1.BindClient{{Port: 15005, Container: "debug", Process: "nc"}}, nil},
		{"outside is a finding even with clients unset", ports[1:2], []v1alpha1.BindClient{{Port: 15005, Outside: true, Process: "containerd"}}, []ClientFinding{{
			Port: 15005, Outside: true, Process: "containerd", Field: "spec.ports[0].clients",
			Message: "port 15005/TCP: containerd outside the pod's containers is connected on loopback (a port-forward or a process of the node)"}}},
		{"ports of the policy add up", []v1alpha1.LoopbackPort{ports[0], ports[3]}, []v1alpha1.BindClient{{Port: 15000, Container: "sidecar"}}, nil},
		{"an unprotected or UDP port is not the policy's concern", ports[:1], []v1alpha1.BindClient{{Port: 15020, Container: "x"}, {Port: 9000, Outside: true}}, nil},
		{"unknown container", ports[:1], []v1alpha1.BindClient{{Port: 15000}}, []ClientFinding{{
			Port: 15000, Field: "spec.ports[0].clients",
			Message: `port 15000/TCP: an unknown container (an unknown process) is connected on loopback, but spec.ports[0].clients lists only ["app"]`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, UnexpectedClients(tc.ports, tc.clients)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
