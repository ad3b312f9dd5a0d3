//go:build e2e

package redteam

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole13NodeMates: pods that can enter other pods' network namespaces
// (a privileged pod, a hostPID pod with SYS_PTRACE, a hostPath of /proc)
// on the node of a protected pod reach its loopback-only ports without any
// NetworkPolicy seeing it. The tenant may create them (edit grants pods,
// and nodeName needs no scheduler); loopguard must report them as
// node-mates of the protected pod: in the policy's status, an Event and
// loopguard audit.
func TestHole13NodeMates(t *testing.T) {
	tn := newTenant(t)
	node := "redteam-node-" + strings.TrimPrefix(tn.NS, "redteam-")
	admin(t, fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n", node), "create", "-f", "-")
	t.Cleanup(func() { tryAdmin(t, "", "delete", "node", node, "--wait=false") })

	tn.Must(t, `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata:
  name: cart-admin
spec:
  podSelector:
    matchLabels: {app: cart}
  ports:
  - port: 15000
`, "apply", "-f", "-")
	waitEnforced(t, tn.NS, "loopbackservice", "cart-admin")

	pod := func(name, labels, extraSpec, container string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s}
spec:
  nodeName: %s
%s  containers:
  - name: main
    image: registry.invalid/x
%s---
`, name, labels, node, extraSpec, container)
	}
	manifest := pod("cart-0", "app: cart", "", "") +
		pod("privileged", "app: tools", "", "    securityContext: {privileged: true}\n") +
		pod("tracer", "app: tools", "  hostPID: true\n", "    securityContext: {capabilities: {add: [SYS_PTRACE]}}\n") +
		pod("procfs", "app: tools", "  volumes:\n  - {name: proc, hostPath: {path: /proc}}\n", "") +
		pod("harmless", "app: tools", "", "")
	// As the tenant: edit grants pods, and nothing here needs more.
	tn.Must(t, manifest, "apply", "-f", "-")

	want := map[string]string{
		"privileged": "privileged container main",
		"tracer":     "hostPID and SYS_PTRACE in container main",
		"procfs":     "hostPath /proc (volume proc)",
	}
	var last string
	devcluster.Eventually(t, time.Minute, func() string {
		r := tryAdmin(t, "", "-n", tn.NS, "get", "loopbackservice", "cart-admin", "-o", "jsonpath={.status.nodeMates}")
		last = r.Stdout
		var mates []struct {
			Namespace, Name, Node string
			Reasons               []string
		}
		if strings.TrimSpace(r.Stdout) == "" {
			return "no status.nodeMates: " + r.String()
		}
		if err := json.Unmarshal([]byte(r.Stdout), &mates); err != nil {
			return err.Error() + ": " + r.String()
		}
		got := map[string]string{}
		for _, m := range mates {
			if m.Node != node || m.Namespace != tn.NS {
				return fmt.Sprintf("node-mate on the wrong node or namespace: %+v", m)
			}
			got[m.Name] = strings.Join(m.Reasons, "; ")
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Sprintf("status.nodeMates = %v, want %v", got, want)
		}
		return ""
	})
	t.Logf("status.nodeMates: %s", last)

	devcluster.Eventually(t, time.Minute, func() string {
		r := tryAdmin(t, "", "-n", tn.NS, "get", "events", "--field-selector", "involvedObject.name=cart-admin,reason=NodeMate", "-o", "jsonpath={.items[*].message}")
		for name := range want {
			if !strings.Contains(r.Stdout, tn.NS+"/"+name) {
				return "no NodeMate Event for " + name + ": " + r.String()
			}
		}
		return ""
	})

	// loopguard audit, as the tenant would run it in its namespace.
	r := devcluster.Run(2*time.Minute, devcluster.KubeconfigEnv(), "", loopguardCLI(t), "audit", "-n", tn.NS, "-o", "json")
	var rep struct {
		NodeMates []struct {
			Namespace, Name, Node string
			Reasons               []string
			Protected             []string
		} `json:"nodeMates"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("loopguard audit -o json: %v: %s", err, r)
	}
	got := map[string]string{}
	for _, m := range rep.NodeMates {
		got[m.Name] = strings.Join(m.Reasons, "; ")
		if m.Node != node || strings.Join(m.Protected, ",") != tn.NS+"/cart-0" {
			t.Errorf("audit node-mate %+v: want node %s and protected pod %s/cart-0", m, node, tn.NS)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("loopguard audit nodeMates = %v, want %v: %s", got, want, r)
	}
	table := devcluster.Run(2*time.Minute, devcluster.KubeconfigEnv(), "", loopguardCLI(t), "audit", "-n", tn.NS)
	if !strings.Contains(table.Stdout, tn.NS+"/tracer") || !strings.Contains(table.Stdout, "SYS_PTRACE") {
		t.Errorf("loopguard audit's table does not name the node-mates: %s", table)
	}
	t.Logf("loopguard audit:\n%s", table.Stdout)
}
