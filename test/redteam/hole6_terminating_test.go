//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole6Terminating: a Service held by a finalizer after its deletion
// is still judged: patching it to a protected port is refused (kube-proxy
// keeps routing a terminating Service), while removing the finalizer, which
// introduces nothing, still works.
func TestHole6Terminating(t *testing.T) {
	tn := newTenant(t)
	policy(t, tn.NS, "envoy-admin", 15000, "Deny", "")
	tn.Must(t, cartPod("cart-0"), "create", "-f", "-")
	tn.Must(t, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: held, namespace: %s, finalizers: [example.com/hold]}
spec:
  selector: {app: cart}
  ports: [{port: 80, targetPort: 8080}]
`, tn.NS), "create", "-f", "-")
	t.Cleanup(func() {
		tryAdmin(t, "", "-n", tn.NS, "patch", "service", "held", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
	})

	tn.DeleteHeld(t, "service", "held")

	r := tn.Refused(t, "reaches 15000/TCP", "", "patch", "service", "held", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/ports/0/targetPort","value":15000}]`)
	t.Logf("patch of the terminating Service refused: %s", strings.TrimSpace(r.Stderr))

	tn.Must(t, "", "patch", "service", "held", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
	devcluster.Eventually(t, time.Minute, func() string {
		r := tn.Kubectl(t, "", "get", "service", "held", "--ignore-not-found", "-o", "name")
		if strings.TrimSpace(r.Stdout) != "" {
			return "service held still exists"
		}
		return ""
	})
}
