//go:build node

package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const guardedYAML = `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: listener-admin, namespace: %s}
spec:
  podSelector: {matchLabels: {run: listener}}
  ports: [{port: 15000}]
  enforcementAction: Audit
  portForward:
    action: Deny
    allowed: %s
`

// TestPortForwardGuard closes the hole TestListenerPod shows: with a
// policy, kubectl port-forward to the pod is refused by loopguard, whatever
// port it names, and an allowed group gets through to 127.0.0.1:15000.
func TestPortForwardGuard(t *testing.T) {
	ns := testNamespace(t)
	const pod = "listener"
	mustKubectl(t, "run", pod, "-n", ns, "--image="+listenerImage, "--image-pull-policy=Never", "--restart=Never")
	if r := kubectl(t, "wait", "--for=condition=Ready", "pod/"+pod, "-n", ns, "--timeout=60s"); r.Err != nil {
		t.Fatalf("pod not Ready: %s", r)
	}
	apply := func(allowed string) {
		path := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(guardedYAML, ns, allowed)), 0o600); err != nil {
			t.Fatal(err)
		}
		mustKubectl(t, "apply", "-f", path)
	}
	apply("[]")

	// 8080 is not even a protected port: the decision is per pod.
	want := fmt.Sprintf(`admission webhook "portforward.loopguard.io" denied the request: port-forward to pod %s/%s is refused: LoopbackService %s/listener-admin declares ports of this pod loopback-only`, ns, pod, ns)
	eventually(t, 30*time.Second, func() string {
		r := run(20*time.Second, kubeconfigEnv(), kubectlBin(), "port-forward", "-n", ns, "pod/"+pod, "--address", "127.0.0.1", ":8080")
		if r.Err == nil || !strings.Contains(r.Stderr, want) {
			return "kubectl port-forward should fail with the guard's message: " + r.String()
		}
		t.Logf("kubectl port-forward: %s", strings.TrimSpace(r.Stderr))
		return ""
	})

	// The dev admin is in system:masters: allow that group (break-glass).
	apply("[{kind: Group, name: 'system:masters'}]")
	eventually(t, 30*time.Second, func() string {
		r := run(5*time.Second, kubeconfigEnv(), kubectlBin(), "port-forward", "-n", ns, "pod/"+pod, "--address", "127.0.0.1", ":15000")
		if strings.Contains(r.Stderr, "portforward.loopguard.io") {
			return "still refused: " + r.String()
		}
		return ""
	})
	local := portForward(t, ns, pod, 15000)
	eventually(t, 10*time.Second, func() string {
		got, err := answer("tcp", local)
		if err != nil || got != pod {
			return fmt.Sprintf("through port-forward %s: %q, %v", local, got, err)
		}
		return ""
	})
	// The policy records who port-forwarded.
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "get", "events", "-n", ns, "--field-selector", "reason=PortForward", "-o", "jsonpath={range .items[*]}{.note}{.message}{\"\\n\"}{end}")
		if !strings.Contains(r.Stdout, ": deny") || !strings.Contains(r.Stdout, ": audit") {
			return "PortForward events (want a deny and an audit): " + r.String()
		}
		return ""
	})
}
