package cli

import (
	"strings"
	"testing"
)

// ownedInput is a Deployment exported with the ReplicaSet it controls
// (`kubectl get deploy,rs -o yaml`), both declaring the protected port,
// and a pod being deleted.
const ownedInput = `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: envoy-admin, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  ports: [{port: 15000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop, uid: dep-uid}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: envoy, image: envoy, ports: [{containerPort: 15000}]}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: cart-7f9
  namespace: shop
  uid: rs-uid
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: cart, uid: dep-uid, controller: true}]
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: envoy, image: envoy, ports: [{containerPort: 15000}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: shop, labels: {app: cart}, deletionTimestamp: "2026-01-01T00:00:00Z"}
spec: {containers: [{name: envoy, image: envoy, ports: [{containerPort: 15000}]}]}
`

// TestCheckJudgesLikeTheAudit: check judges a file as the operator's audit
// judges a namespace (rules.Audit): a ReplicaSet its Deployment really
// controls with the same template is reported through the Deployment
// only, and a pod being deleted is not judged.
func TestCheckJudgesLikeTheAudit(t *testing.T) {
	stdout, stderr, code := run(t, ownedInput, "check", "-f", "-")
	if code != ExitViolations {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitViolations, stderr)
	}
	if !strings.Contains(stdout, "Deployment shop/cart") || strings.Contains(stdout, "ReplicaSet shop/cart-7f9") || strings.Contains(stdout, "Pod shop/old") {
		t.Fatalf("want the Deployment's finding only:\n%s", stdout)
	}
	if !strings.Contains(stdout, "1 finding (1 Deny") {
		t.Fatalf("want one finding:\n%s", stdout)
	}
}

// generateNameInput is a pod as a manifest may hold one, with
// metadata.generateName only, that a Service selects.
const generateNameInput = `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: envoy-admin, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  ports: [{port: 15000}]
---
apiVersion: v1
kind: Pod
metadata: {generateName: cart-, namespace: shop, labels: {app: cart}}
spec: {containers: [{name: envoy, image: envoy, ports: [{name: admin, containerPort: 15000}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  selector: {app: cart}
  ports: [{port: 80, targetPort: admin}]
`

// TestCheckPodGenerateName: the rules judge a file's pods as
// podview.Pods, which have no generateName; check still reports a pod
// with only metadata.generateName as "<generateName>*", as the webhook
// names it, at its own lines.
func TestCheckPodGenerateName(t *testing.T) {
	stdout, stderr, code := run(t, generateNameInput, "check", "-f", "-")
	if code != ExitViolations {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitViolations, stderr)
	}
	for _, want := range []string{
		`<stdin>:11: [Deny] Pod shop/cart-*: spec.containers[0].ports[0].containerPort: pod "cart-*" container "envoy"`,
		`<stdin>:10: [Deny] Pod shop/cart-*: metadata.labels: pod "cart-*" is selected by service "cart"`,
		`[Deny] Service shop/cart: spec.ports[0].targetPort:`,
		"3 findings (3 Deny",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, _ = run(t, generateNameInput, "check", "-f", "-", "-o", "json")
	if n := strings.Count(stdout, `"name": "cart-*"`); n != 2 {
		t.Errorf("want the pod's 2 findings named cart-*, got %d:\n%s", n, stdout)
	}
}
