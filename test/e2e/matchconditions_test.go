//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cartServiceYAML is an ordinary Service to the cart pods' open port 8080
// (%[1]s: the namespace).
const cartServiceYAML = `---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: %[1]s}
spec:
  selector: {app: cart}
  ports: [{port: 80, targetPort: 8080}]
`

const keepExposureObjects = `apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: %[1]s, labels: {app: cart}}
spec:
  containers:
  - {name: app, image: registry.invalid/cart:1, ports: [{containerPort: 8080}]}
` + cartServiceYAML + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: %[1]s}
spec:
  replicas: 0
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers:
      - {name: app, image: registry.invalid/cart:1, ports: [{containerPort: 8080}]}
`

// TestUpdatesThatKeepExposureSkipTheWebhook checks config/webhook's
// matchConditions as the API server runs them: updates that keep a pod's
// labels and spec, or a Service's or workload's spec, are decided without
// calling loopguard (its per-namespace UPDATE counter does not move), and
// updates that may change exposure still reach it and are judged.
func TestUpdatesThatKeepExposureSkipTheWebhook(t *testing.T) {
	ns := testNamespace(t)
	mustKubectl(t, fmt.Sprintf(guardYAML, ns, "Deny"), "apply", "-f", "-")
	waitEnforced(t, ns)
	mustKubectl(t, fmt.Sprintf(keepExposureObjects, ns), "apply", "-f", "-")
	get := metricsGetter(t, ns)
	// loopguard_admission_decisions_total{namespace=ns, operation=UPDATE},
	// summed by kind.
	series := regexp.MustCompile(`^loopguard_admission_decisions_total\{([^}]*)\} (\S+)$`)
	kindLabel := regexp.MustCompile(`kind="([^"]*)"`)
	updates := func() map[string]int {
		t.Helper()
		code, body := get(readerToken)
		if code != http.StatusOK {
			t.Fatalf("metrics: %d %.200s", code, body)
		}
		n := map[string]int{}
		for _, l := range strings.Split(body, "\n") {
			m := series.FindStringSubmatch(l)
			if m == nil || !strings.Contains(m[1], `namespace="`+ns+`"`) || !strings.Contains(m[1], `operation="UPDATE"`) {
				continue
			}
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			kind := kindLabel.FindStringSubmatch(m[1])
			n[kind[1]] += int(v)
		}
		return n
	}
	// The Deployment controller's own first writes are done once it has
	// observed the Deployment (its ReplicaSet updates keep the spec too, but
	// they should not race the first read).
	mustKubectl(t, "", "rollout", "status", "-n", ns, "deployment/cart", "--timeout=60s")
	before := updates()

	for i := range 5 {
		for _, obj := range []string{"pod/cart", "service/cart", "deployment/cart"} {
			mustKubectl(t, "", "annotate", "-n", ns, obj, fmt.Sprintf("touched=%d", i), "--overwrite")
		}
	}
	mustKubectl(t, "", "label", "-n", ns, "service/cart", "team=shop")
	if after := updates(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("updates that keep labels and spec reached the webhook: UPDATE reviews by kind %v, then %v", before, after)
	}

	// Updates that may change exposure still reach loopguard, and it
	// judges them.
	mustKubectl(t, "", "label", "-n", ns, "pod/cart", "tier=backend")
	r := kubectl(t, "", "patch", "-n", ns, "service/cart", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/ports/0/targetPort","value":15000}]`)
	if r.Err == nil || !strings.Contains(r.Stderr, `admission webhook "services.loopguard.io" denied the request`) {
		t.Errorf("a Service update to a protected targetPort was not refused by loopguard: %s", r)
	}
	r = kubectl(t, "", "patch", "-n", ns, "deployment/cart", "--type=json",
		"-p", `[{"op":"add","path":"/spec/template/spec/containers/0/ports/-","value":{"containerPort":15000}}]`)
	if r.Err == nil || !strings.Contains(r.Stderr, `admission webhook "workloads.loopguard.io" denied the request`) {
		t.Errorf("a Deployment update adding a protected port was not refused by loopguard: %s", r)
	}
	after := updates()
	for _, kind := range []string{"Pod", "Service", "Deployment"} {
		if after[kind] != before[kind]+1 {
			t.Errorf("%s: %d UPDATE reviews after one update that may change exposure, want %d (before: %v, after: %v)",
				kind, after[kind], before[kind]+1, before, after)
		}
	}
}
