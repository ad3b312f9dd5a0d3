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
