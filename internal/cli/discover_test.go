package cli

import (
	"bytes"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/discover"
)

// TestRenderDiscover: proposals as YAML kubectl applies (ranges as
// port..endPort, processes as comments, Audit), everything else as
// comments.
func TestRenderDiscover(t *testing.T) {
	res := discover.Result{
		NoDiscovery: []string{"node-b"},
		Proposals: []discover.Proposal{
			{Workload: discover.Workload{Kind: "Deployment", Namespace: "shop", Name: "web"}, Name: "web-loopback",
				Selector: map[string]string{"app": "web", "tier": "true"}, Pods: []string{"web-1", "web-2"}, Others: []string{"canary"},
				Ports: []discover.Port{
					{Protocol: "TCP", From: 15020, To: 15021, Processes: []string{"sidecar/pilot-agent"}},
					{Protocol: "UDP", From: 5353, To: 5353, Processes: []string{"app/listener"}},
				}},
			{Workload: discover.Workload{Kind: "Pod", Namespace: "shop", Name: "naked"}, Name: "naked-loopback", Selector: map[string]string{},
				Ports: []discover.Port{{Protocol: "TCP", From: 7001, To: 7001}}},
		},
		Wildcards: []discover.Wildcard{{Workload: discover.Workload{Kind: "DaemonSet", Namespace: "shop", Name: "exporter"},
			Protocol: "TCP", Address: "0.0.0.0", Port: 9100, Processes: []string{"app/listener"}, Pods: []string{"exporter-x"}}},
	}
	var b bytes.Buffer
	renderDiscover(&b, "shop", res, 2)
	golden(t, "discover.golden", b.String())

	b.Reset()
	renderDiscover(&b, "", discover.Result{}, 0)
	golden(t, "discover-empty.golden", b.String())
}

// TestDiscoverProposalsAdmitEverything: applying a proposal must change
// nothing before the team has looked, so every action it leaves to a
// refusing default is set to Audit. portForward defaults to Deny: a
// proposal without it would refuse port-forward to the pods it selects.
func TestDiscoverProposalsAdmitEverything(t *testing.T) {
	var b bytes.Buffer
	renderProposal(&b, discover.Proposal{Workload: discover.Workload{Kind: "Deployment", Namespace: "shop", Name: "web"}, Name: "web-loopback",
		Selector: map[string]string{"app": "web"}, Pods: []string{"web-1"}, Ports: []discover.Port{{Protocol: "TCP", From: 15000, To: 15000}}})
	var lbs v1alpha1.LoopbackService
	if err := yaml.UnmarshalStrict(b.Bytes(), &lbs); err != nil {
		t.Fatalf("the proposal does not decode: %v\n%s", err, b.String())
	}
	s := lbs.Spec
	if s.EnforcementAction != v1alpha1.ActionAudit {
		t.Errorf("enforcementAction %q, want Audit", s.EnforcementAction)
	}
	if s.PortForward == nil || s.PortForward.Action != v1alpha1.PortForwardAudit {
		t.Errorf("portForward %+v, want action Audit (its default, Deny, would refuse port-forward)\n%s", s.PortForward, b.String())
	}
	for name, a := range map[string]*v1alpha1.AccessSpec{"exec": s.Exec, "debug": s.Debug} {
		if a != nil && a.Action != v1alpha1.AccessAudit { // nil: the default, Audit
			t.Errorf("%s %+v, want Audit or unset", name, a)
		}
	}
}
