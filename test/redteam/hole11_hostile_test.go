//go:build e2e

package redteam

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// hostilePorts is as many ports as the tests put in one object: the
// issue's 20,000, well within what the API server accepts (it bounds an
// object by size, about 1.5 MiB in etcd, not by its number of ports).
const hostilePorts = 20000

// hostileService is a Service selecting app=cart with hostilePorts ports,
// the i-th targeting target(i).
func hostileService(t *testing.T, ns, name string, target func(i int) any) string {
	t.Helper()
	ports := make([]map[string]any, hostilePorts)
	for i := range ports {
		ports[i] = map[string]any{"name": fmt.Sprintf("p%d", i), "port": 1 + i, "targetPort": target(i)}
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"selector": map[string]string{"app": "cart"}, "ports": ports},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostilePod is a pod labelled app=cart declaring hostilePorts named
// ports, none of them protected.
func hostilePod(t *testing.T, name string) string {
	t.Helper()
	ports := make([]map[string]any, hostilePorts)
	for i := range ports {
		ports[i] = map[string]any{"name": fmt.Sprintf("n%d", i), "containerPort": 20000 + i}
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "labels": map[string]string{"app": "cart"}},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.invalid/cart:1", "ports": ports}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHole11HostileObjects: objects built to make a review slow or its
// answer huge are answered by the webhook itself, in time (no "context
// deadline exceeded" from the API server), with a bounded message.
func TestHole11HostileObjects(t *testing.T) {
	tn := newTenant(t)
	policy(t, tn.NS, "envoy-admin", 15000, "Deny", "")
	for i := range 3 {
		tn.Must(t, hostilePod(t, fmt.Sprintf("cart-%d", i)), "create", "-f", "-")
	}

	t.Run("every port to the protected port", func(t *testing.T) {
		r := tn.Refused(t, `admission webhook "services.loopguard.io" denied the request`,
			hostileService(t, tn.NS, "numeric", func(int) any { return 15000 }), "create", "-f", "-")
		if n := len(r.Stderr); n > 64<<10 {
			t.Fatalf("denial is %d bytes, want at most 64 KiB: %.300s...", n, r.Stderr)
		}
		if want := fmt.Sprintf("and %d more exposures", hostilePorts-20); !strings.Contains(r.Stderr, want) {
			t.Fatalf("denial does not say %q: %.300s...", want, r.Stderr)
		}
		t.Logf("%d-byte denial: %.200s ... %s", len(r.Stderr), r.Stderr, r.Stderr[max(0, len(r.Stderr)-80):])
	})

	t.Run("every port named, against pods with as many names", func(t *testing.T) {
		// No name resolves to a protected port: the answer is an allow,
		// which takes the webhook resolving every name on every pod.
		r := tn.Kubectl(t, hostileService(t, tn.NS, "named", func(i int) any { return fmt.Sprintf("n%d", i) }), "create", "-f", "-")
		if r.Err != nil {
			t.Fatalf("hostile named Service not answered by loopguard: %.2000s", r.String())
		}
	})
}
