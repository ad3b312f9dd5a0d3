package cli

import (
	"bytes"
	"testing"

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
