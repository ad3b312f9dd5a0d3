//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
)

// TestHole5WarnMasksDeny: a Service admitted with a Warn on 6060 cannot be
// patched, in the same field, to target 15000, which a Deny policy
// protects on the same pods.
func TestHole5WarnMasksDeny(t *testing.T) {
	tn := newTenant(t)
	policy(t, tn.NS, "debug", 6060, "Warn", "")
	policy(t, tn.NS, "envoy-admin", 15000, "Deny", "")
	tn.Must(t, cartPod("cart-0"), "create", "-f", "-")

	r := tn.Must(t, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: admin, namespace: %s}
spec:
  selector: {app: cart}
  ports: [{port: 80, targetPort: 6060}]
`, tn.NS), "create", "-f", "-")
	if !strings.Contains(r.Stderr, "Warning:") || !strings.Contains(r.Stderr, "LoopbackService "+tn.NS+"/debug") {
		t.Fatalf("Service on 6060 admitted without the Warn policy's warning: %s", r)
	}

	r = tn.Refused(t, "reaches 15000/TCP", "", "patch", "service", "admin", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/ports/0/targetPort","value":15000}]`)
	t.Logf("patch refused: %s", strings.TrimSpace(r.Stderr))
	if !strings.Contains(r.Stderr, "LoopbackService "+tn.NS+"/envoy-admin") {
		t.Fatalf("refusal does not name the Deny policy: %s", r)
	}
}
