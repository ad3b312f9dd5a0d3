//go:build node

package node

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestDiscoverProposesPolicies runs `loopguard discover` against the dev
// cluster's agent (discovery on, config/overlays/agent-dev) with listener
// pods of three shapes: a Deployment whose sidecar binds loopback ports
// 15020-15022 (and whose app binds 0.0.0.0:8080, a declared containerPort),
// a DaemonSet binding 0.0.0.0:9100 that nothing declares, and a bare pod
// with a UDP listener on ::1. The proposals are one Audit policy per
// workload with a range for the contiguous ports; applied for real, each
// selects exactly its workload's pods (the manager's status.matchedPods);
// a second run proposes nothing, and still lists the undeclared wildcard.
func TestDiscoverProposesPolicies(t *testing.T) {
	deployAgent(t)
	ns := testNamespace(t)
	bin := filepath.Join(t.TempDir(), "loopguard")
	if r := run(5*time.Minute, nil, "go", "build", "-o", bin, "./cmd/loopguard"); r.Err != nil {
		t.Fatalf("go build ./cmd/loopguard: %s", r)
	}
	devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: %[2]s
        imagePullPolicy: Never
        args: ["--listen", "tcp4://0.0.0.0:8080"]
        ports: [{containerPort: 8080}]
      - name: sidecar
        image: %[2]s
        imagePullPolicy: Never
        args: ["--listen", "tcp4://127.0.0.1:15020", "--listen", "tcp4://127.0.0.1:15021", "--listen", "tcp6://[::1]:15022"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: exporter, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: exporter}}
  template:
    metadata: {labels: {app: exporter}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: exporter
        image: %[2]s
        imagePullPolicy: Never
        args: ["--listen", "tcp4://0.0.0.0:9100"]
---
apiVersion: v1
kind: Pod
metadata: {name: dns, namespace: %[1]s, labels: {app: dns}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: cache
    image: %[2]s
    imagePullPolicy: Never
    args: ["--listen", "udp6://[::1]:5353"]
`, ns, listenerImage), "apply", "-f", "-")
	for _, sel := range []string{"app=web", "app=exporter", "app=dns"} {
		eventually(t, 90*time.Second, func() string {
			if r := kubectl(t, "wait", "--for=condition=Ready", "pod", "-l", sel, "-n", ns, "--timeout=5s"); r.Err != nil {
				return fmt.Sprintf("pods %s not Ready: %s", sel, r)
			}
			return ""
		})
	}

	discover := func() string {
		t.Helper()
		r := run(time.Minute, devcluster.KubeconfigEnv(), bin, "discover", "-n", ns)
		if r.Err != nil {
			t.Fatalf("loopguard discover: %s", r)
		}
		return r.Stdout
	}
	wildcard := fmt.Sprintf("#   DaemonSet %s/exporter: TCP 0.0.0.0 port 9100 (exporter/listener) in 1 pod", ns)
	wantWeb := fmt.Sprintf(`# Deployment %[1]s/web: loopback-only listeners seen in 2 pods`, ns)
	wantWebSpec := fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata:
  name: web-loopback
  namespace: %[1]s
spec:
  podSelector:
    matchLabels:
      app: web
      tier: front
  enforcementAction: Audit
  portForward: # Deny by default; Audit records each session instead
    action: Audit
  ports:
  - port: 15020 # sidecar/listener
    endPort: 15022
    protocol: TCP
`, ns)
	wantDNS := fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata:
  name: dns-loopback
  namespace: %[1]s
spec:
  podSelector:
    matchLabels:
      app: dns
  enforcementAction: Audit
  portForward: # Deny by default; Audit records each session instead
    action: Audit
  ports:
  - port: 5353 # cache/listener
    protocol: UDP
`, ns)
	var out string
	eventually(t, 90*time.Second, func() string {
		out = discover()
		for _, w := range []string{wantWeb, wantWebSpec, wantDNS, wildcard} {
			if !strings.Contains(out, w) {
				return fmt.Sprintf("discover output lacks\n%s\ngot:\n%s", w, out)
			}
		}
		return ""
	})
	t.Logf("loopguard discover -n %s:\n%s", ns, out)
	if n := strings.Count(out, "kind: LoopbackService"); n != 2 {
		t.Errorf("%d proposals, want 2 (web, dns): the exporter binds no loopback port", n)
	}
	if strings.Contains(out, "8080") {
		t.Error("port 8080 (a wildcard declared by a containerPort) is proposed or listed")
	}

	// Applied for real, the proposals select exactly their workloads' pods.
	devcluster.MustKubectl(t, out, "apply", "-f", "-")
	for policy, want := range map[string]string{"web-loopback": "2", "dns-loopback": "1"} {
		eventually(t, 60*time.Second, func() string {
			got := strings.TrimSpace(mustKubectl(t, "get", "lbs", policy, "-n", ns, "-o", "jsonpath={.status.matchedPods}").Stdout)
			if got != want {
				return fmt.Sprintf("policy %s matches %q pods, want %s", policy, got, want)
			}
			return ""
		})
	}
	webPods := strings.Fields(mustKubectl(t, "get", "pods", "-n", ns, "-l", "app=web,tier=front", "-o", "jsonpath={.items[*].metadata.name}").Stdout)
	for _, p := range webPods {
		if !strings.HasPrefix(p, "web-") {
			t.Errorf("web-loopback's selector selects pod %s, not the Deployment's", p)
		}
	}

	// A second run proposes nothing new; it ran (its header) and still
	// lists the wildcard.
	eventually(t, 60*time.Second, func() string {
		out = discover()
		if !strings.HasPrefix(out, "# loopguard discover: namespace "+ns) || !strings.Contains(out, wildcard) {
			return "second run: unexpected output:\n" + out
		}
		if strings.Contains(out, "kind: LoopbackService") {
			return "second run still proposes:\n" + out
		}
		return ""
	})
	t.Logf("second run:\n%s", out)
}
