//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSamplesAndPrinterColumns is the README's first steps: apply the
// samples, list them, read the field docs.
func TestSamplesAndPrinterColumns(t *testing.T) {
	mustKubectl(t, "", "apply", "-f", "config/samples/")
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "", "get", "lbs", "-n", "default")
		if r.Err != nil {
			return r.String()
		}
		header := strings.Fields(strings.SplitN(r.Stdout, "\n", 2)[0])
		if strings.Join(header, " ") != "NAME PORTS ACTION MATCHED VIOLATIONS READY AGE" {
			return "unexpected columns: " + r.Stdout
		}
		for _, row := range []string{"envoy-admin", "15000/TCP", "Deny", "cart-redis", "6379/TCP", "debug-endpoints", "6060-6069/TCP, 9901/UDP", "Warn"} {
			if !strings.Contains(r.Stdout, row) {
				return fmt.Sprintf("%q missing from:\n%s", row, r.Stdout)
			}
		}
		if strings.Count(r.Stdout, "True") < 3 {
			return "not all Ready:\n" + r.Stdout
		}
		return ""
	})
	r := mustKubectl(t, "", "explain", "lbs.spec.ports.endPort")
	if !strings.Contains(r.Stdout, "makes this entry the range port..endPort") {
		t.Errorf("kubectl explain lacks the field's docs:\n%s", r.Stdout)
	}
	r = mustKubectl(t, "", "get", "clbs")
	if !strings.Contains(r.Stdout, "agent-admin") || !strings.Contains(r.Stdout, "Audit") {
		t.Errorf("cluster policy not listed:\n%s", r.Stdout)
	}
}

const guardYAML = `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: envoy-admin, namespace: %s}
spec:
  podSelector: {matchLabels: {app: cart}}
  ports: [{port: 15000, name: envoy-admin}]
  enforcementAction: %s
`

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: %s}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers:
      - {name: app, image: registry.invalid/cart:1}
      - name: envoy
        image: registry.invalid/envoy:1
        ports: [{containerPort: 15000}]
`

// waitEnforced waits until a dry-run of the deployment is refused or
// warned about: the webhook learns policies through an informer.
func waitEnforced(t *testing.T, ns string) {
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, fmt.Sprintf(deploymentYAML, ns), "apply", "--dry-run=server", "-f", "-")
		if strings.Contains(r.Stderr, "loopback-only") {
			return ""
		}
		return "not enforced yet: " + r.String()
	})
}

func TestDenyThroughKubectl(t *testing.T) {
	ns := testNamespace(t)
	mustKubectl(t, fmt.Sprintf(guardYAML, ns, "Deny"), "apply", "-f", "-")
	waitEnforced(t, ns)

	r := kubectl(t, fmt.Sprintf(deploymentYAML, ns), "apply", "-f", "-")
	want := fmt.Sprintf(`admission webhook "workloads.loopguard.io" denied the request: deployment "cart" container "envoy": port 15000/TCP at spec.template.spec.containers[1].ports[0].containerPort is declared loopback-only by LoopbackService %s/envoy-admin; remove the containerPort (the container must bind 127.0.0.1)`, ns)
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Fatalf("kubectl apply should fail with\n%s\ngot: %s", want, r)
	}
	if r := kubectl(t, "", "get", "deployment", "cart", "-n", ns); r.Err == nil {
		t.Errorf("the deployment was stored: %s", r)
	}

	svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: admin, namespace: %s}
spec:
  selector: {app: cart}
  ports: [{port: 80, targetPort: envoy-admin}]
`, ns)
	r = kubectl(t, svc, "create", "--dry-run=server", "-f", "-")
	if r.Err == nil || !strings.Contains(r.Stderr, `service "admin" port 80 at spec.ports[0].targetPort targets the port named "envoy-admin"`) {
		t.Errorf("server-side dry-run of the Service should be refused: %s", r)
	}
}

func TestWarnThroughKubectl(t *testing.T) {
	ns := testNamespace(t)
	mustKubectl(t, fmt.Sprintf(guardYAML, ns, "Warn"), "apply", "-f", "-")
	waitEnforced(t, ns)
	r := mustKubectl(t, fmt.Sprintf(deploymentYAML, ns), "apply", "-f", "-")
	if !strings.Contains(r.Stderr, `Warning: deployment "cart" container "envoy": port 15000/TCP`) {
		t.Errorf("kubectl should print the warning: %s", r)
	}
	if !strings.Contains(r.Stdout, "deployment.apps/cart created") {
		t.Errorf("the deployment should be created: %s", r)
	}
	// The audit reports what Warn let through.
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "", "describe", "lbs", "envoy-admin", "-n", ns)
		for _, want := range []string{"Compliant", "ViolationsFound", "Violation", `deployment "cart"`} {
			if !strings.Contains(r.Stdout, want) {
				return fmt.Sprintf("%q missing from describe:\n%s", want, r.Stdout)
			}
		}
		return ""
	})
}

func TestInvalidPolicyThroughKubectl(t *testing.T) {
	ns := testNamespace(t)
	cases := map[string][]string{
		// The API server checks CEL rules only once the schema passes, so
		// each input carries one kind of mistake.
		"ports: [{port: 6069, endPort: 6060}]":           {"spec.ports[0]: Invalid value", "endPort must be greater than or equal to port"},
		"ports: [{port: 1}]\n  enforcementAction: Block": {`spec.enforcementAction: Unsupported value: "Block"`, `supported values: "Deny", "Warn", "Audit"`},
		"ports: [{port: 70000}]":                         {"spec.ports[0].port: Invalid value: 70000: spec.ports[0].port in body should be less than or equal to 65535"},
	}
	for spec, wants := range cases {
		bad := fmt.Sprintf("apiVersion: loopguard.io/v1alpha1\nkind: LoopbackService\nmetadata: {name: bad, namespace: %s}\nspec:\n  podSelector: {}\n  %s\n", ns, spec)
		r := kubectl(t, bad, "apply", "-f", "-")
		if r.Err == nil {
			t.Fatalf("invalid policy accepted: %s", r)
		}
		for _, want := range wants {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("%q missing from: %s", want, r.Stderr)
			}
		}
	}
}
