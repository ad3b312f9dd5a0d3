//go:build e2e

package redteam

import (
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole8CrossNamespaceEndpoints is the CVE-2021-25740 pattern: a tenant
// writes, in its own namespace, an EndpointSlice that lists the IP of a
// protected pod of another namespace (shop), and its Service then reaches
// the pod's loopback-only port. Every address is judged against the
// policies of the pod that owns the IP, whatever namespace the slice is in:
// the webhook refuses a new one, and one written before the policy existed
// is reported in the shop policy's status and by loopguard audit.
func TestHole8CrossNamespaceEndpoints(t *testing.T) {
	shop := devcluster.Namespace(t, "shop")
	tn := newTenant(t)
	grantEndpointSlices(t, tn)
	tn.Must(t, selectorlessService("steal"), "apply", "-f", "-")

	// Written before shop protects 15000: admitted, and must be audited.
	earlyIP := runPod(t, nil, shop, "cart-0", "app=cart", 8, 10)
	tn.Must(t, endpointSlice("early", "steal", earlyIP, "", "", 15000), "create", "-f", "-")

	admin(t, protectCart(shop, "Deny"), "apply", "-f", "-")
	waitEnforced(t, shop, "loopbackservice", "envoy-admin")

	t.Run("webhook refuses a new slice to shop's pod", func(t *testing.T) {
		lateIP := runPod(t, nil, shop, "cart-1", "app=cart", 8, 11)
		r := tn.Refused(t, "denied the request", endpointSlice("late", "steal", lateIP, "", "", 15000), "create", "-f", "-")
		if !strings.Contains(r.Stderr, shop+"/cart-1") {
			t.Errorf("the denial should name the pod as %s/cart-1: %s", shop, r.Stderr)
		}
		// By reference to the other namespace, with an IP outside the pods.
		tn.Refused(t, "denied the request", endpointSlice("late-ref", "steal", "10.244.250.1", "cart-1", shop, 15000), "create", "-f", "-")
	})

	t.Run("the shop policy's status reports the existing slice", func(t *testing.T) {
		devcluster.Eventually(t, time.Minute, func() string {
			r := tryAdmin(t, "", "-n", shop, "get", "loopbackservice", "envoy-admin", "-o",
				`jsonpath={range .status.violations[*]}{.kind} {.namespace}/{.name} {.port}{"\n"}{end}`)
			if !strings.Contains(r.Stdout, "EndpointSlice "+tn.NS+"/early 15000") {
				return "status.violations lack the slice " + tn.NS + "/early: " + r.String()
			}
			return ""
		})
	})

	t.Run("loopguard audit reports it", func(t *testing.T) {
		bin := loopguardCLI(t)
		for _, args := range [][]string{{"audit", "-A"}, {"audit", "-n", shop}} {
			r := devcluster.Run(time.Minute, devcluster.KubeconfigEnv(), "", bin, args...)
			if r.Err == nil || !strings.Contains(r.Stdout, tn.NS+"/early") {
				t.Errorf("loopguard %s: want a failing audit naming %s/early, got %s", strings.Join(args, " "), tn.NS, r)
			}
		}
	})
}
