//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// policy applies, as the admin, a LoopbackService protecting port of the
// pods labelled app=cart in ns with action, and waits until it is
// enforced. extra is appended to its spec (YAML, two-space indented).
func policy(t *testing.T, ns, name string, port int, action, extra string) {
	t.Helper()
	admin(t, fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: %s, namespace: %s}
spec:
  podSelector: {matchLabels: {app: cart}}
  ports: [{port: %d}]
  enforcementAction: %s
%s`, name, ns, port, action, extra), "apply", "-f", "-")
	waitEnforced(t, ns, "loopbackservice", name)
}

// cartPod is a pod labelled app=cart that serves 8080 on its pod IP and
// declares no protected port. Without a node it stays Pending, which is
// enough for admission.
func cartPod(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, labels: {app: cart}}
spec:
  containers:
  - {name: app, image: registry.invalid/cart:1, ports: [{containerPort: 8080}]}
`, name)
}

// devclusterEventuallyCan waits until user may verb resource in ns (RBAC
// bindings take effect at once, aggregated roles do not).
func devclusterEventuallyCan(t *testing.T, ns, user, verb, resource string) {
	t.Helper()
	devcluster.Eventually(t, time.Minute, func() string {
		r := tryAdmin(t, "", "--as="+user, "-n", ns, "auth", "can-i", verb, resource)
		if strings.TrimSpace(r.Stdout) != "yes" {
			return user + " may not " + verb + " " + resource + " yet: " + r.String()
		}
		return ""
	})
}
