package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestDigestTellsEntriesApart checks that every field the policies read
// changes a pod's digest, and that no process name can make two different
// entries digest alike. A process names itself (prctl PR_SET_NAME, 15
// bytes of /proc/<pid>/comm), so a tenant could otherwise run one
// loopback listener named like a second listener's text, then replace it
// by that listener on [::]: the report changes, the digest does not, and
// the exposure waits for the next periodic audit.
func TestDigestTellsEntriesApart(t *testing.T) {
	listener := func(port int32, addr, process string) v1alpha1.BindListener {
		return v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: addr, Port: port, Container: "c", Process: process}
	}
	base := func() v1alpha1.PodBindReport {
		return v1alpha1.PodBindReport{
			Namespace: "shop", Name: "cart", UID: "u1",
			Listeners: []v1alpha1.BindListener{listener(15000, "127.0.0.1", "envoy")},
			Clients:   []v1alpha1.BindClient{{Port: 15000, Container: "app", Process: "curl"}},
		}
	}
	if a, b := base(), base(); digest(&a) != digest(&b) {
		t.Fatalf("one entry digests two ways")
	}
	for _, tc := range []struct {
		name   string
		before func(p *v1alpha1.PodBindReport) // from base; nil keeps it
		change func(p *v1alpha1.PodBindReport)
	}{
		{"namespace", nil, func(p *v1alpha1.PodBindReport) { p.Namespace = "shop2" }},
		{"name", nil, func(p *v1alpha1.PodBindReport) { p.Name = "cart2" }},
		{"hostNetwork", nil, func(p *v1alpha1.PodBindReport) { p.HostNetwork = true }},
		{"unchecked", nil, func(p *v1alpha1.PodBindReport) { p.Unchecked = "no sockets table" }},
		{"listener address", nil, func(p *v1alpha1.PodBindReport) { p.Listeners[0].Address = "0.0.0.0" }},
		{"listener port", nil, func(p *v1alpha1.PodBindReport) { p.Listeners[0].Port = 15001 }},
		{"listener protocol", nil, func(p *v1alpha1.PodBindReport) { p.Listeners[0].Protocol = corev1.ProtocolUDP }},
		{"listener container", nil, func(p *v1alpha1.PodBindReport) { p.Listeners[0].Container = "d" }},
		{"listener process", nil, func(p *v1alpha1.PodBindReport) { p.Listeners[0].Process = "envoy2" }},
		{"one more listener", nil, func(p *v1alpha1.PodBindReport) {
			p.Listeners = append(p.Listeners, listener(15000, "127.0.0.1", "envoy"))
		}},
		{"client port", nil, func(p *v1alpha1.PodBindReport) { p.Clients[0].Port = 15001 }},
		{"client outside", nil, func(p *v1alpha1.PodBindReport) { p.Clients[0].Outside = true }},
		{"client container", nil, func(p *v1alpha1.PodBindReport) { p.Clients[0].Container = "app2" }},
		{"client process", nil, func(p *v1alpha1.PodBindReport) { p.Clients[0].Process = "wget" }},
		{"no client", nil, func(p *v1alpha1.PodBindReport) { p.Clients = nil }},
		{"a listener's text moved out of a process name", func(p *v1alpha1.PodBindReport) {
			// "x|TCP/2/::/c/y" is 14 bytes: a valid comm.
			p.Listeners = []v1alpha1.BindListener{listener(1, "127.0.0.1", "x|TCP/2/::/c/y")}
		}, func(p *v1alpha1.PodBindReport) {
			p.Listeners = []v1alpha1.BindListener{listener(1, "127.0.0.1", "x"), listener(2, "::", "y")}
		}},
		{"a client's text moved out of a process name", func(p *v1alpha1.PodBindReport) {
			p.Clients[0].Process = `curl"|client/1/true/""/"`
		}, func(p *v1alpha1.PodBindReport) {
			p.Clients = []v1alpha1.BindClient{{Port: 15000, Container: "app", Process: "curl"}, {Port: 1, Outside: true}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, after := base(), base()
			if tc.before != nil {
				tc.before(&before)
				tc.before(&after)
			}
			tc.change(&after)
			if digest(&before) == digest(&after) {
				t.Errorf("two different entries digest alike:\n%+v\n%+v", before, after)
			}
		})
	}
}
