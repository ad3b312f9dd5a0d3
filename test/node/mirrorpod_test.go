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

// TestKubeletMirrorPodsSkipTheWebhook checks the pods webhook's
// matchCondition: a mirror pod the kubelet creates is admitted without
// asking loopguard (so static control-plane pods never depend on it), while
// the same pod from a user is refused.
func TestKubeletMirrorPodsSkipTheWebhook(t *testing.T) {
	ns := testNamespace(t)
	policy := fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: guard, namespace: %s}
spec:
  podSelector: {matchLabels: {app: static}}
  ports: [{port: 15000}]
`, ns)
	// NodeRestriction: a node may create only mirror pods it owns.
	nodeUID := strings.TrimSpace(mustKubectl(t, "get", "node", nodeName, "-o", "jsonpath={.metadata.uid}").Stdout)
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: static-%s
  namespace: %s
  labels: {app: static}
  annotations: {kubernetes.io/config.mirror: "loopguard-test", kubernetes.io/config.source: file, kubernetes.io/config.hash: "loopguard-test"}
  ownerReferences: [{apiVersion: v1, kind: Node, name: %s, uid: %s, controller: true}]
spec:
  nodeName: %s
  containers:
  - name: admin
    image: %s
    imagePullPolicy: Never
    ports: [{containerPort: 15000}]
`, nodeName, ns, nodeName, nodeUID, nodeName, listenerImage)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mustKubectl(t, "apply", "-f", write("policy.yaml", policy))
	podFile := write("pod.yaml", pod)

	// A user is refused once the policy is enforced.
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "create", "--dry-run=server", "-f", podFile)
		if r.Err == nil || !strings.Contains(r.Stderr, `admission webhook "pods.loopguard.io" denied the request`) {
			return "a user's pod exposing 15000 should be refused: " + r.String()
		}
		return ""
	})
	// The kubelet (NodeRestriction lets a node create mirror pods bound to
	// itself) is not asked about.
	r := kubectl(t, "create", "--dry-run=server", "-f", podFile,
		"--as=system:node:"+nodeName, "--as-group=system:nodes", "--as-group=system:authenticated")
	if r.Err != nil {
		t.Fatalf("the kubelet's mirror pod should skip the webhook: %s", r)
	}
}
