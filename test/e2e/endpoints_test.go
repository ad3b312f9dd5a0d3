//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHandWrittenEndpointSliceThroughKubectl: a Service without a selector
// and a hand-written EndpointSlice pointing at a protected pod's port are
// refused like a Service would be, while the EndpointSlices the control
// plane writes for an ordinary Service keep flowing (the webhook
// configuration leaves them to the API server).
func TestHandWrittenEndpointSliceThroughKubectl(t *testing.T) {
	ns := testNamespace(t)
	mustKubectl(t, fmt.Sprintf(guardYAML, ns, "Deny"), "apply", "-f", "-")
	waitEnforced(t, ns)
	mustKubectl(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: %[1]s, labels: {app: cart}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: loopguard-listener:dev, imagePullPolicy: Never, args: [--listen, "tcp4://0.0.0.0:8080"], ports: [{containerPort: 8080}]}
`+cartServiceYAML, ns), "apply", "-f", "-")
	mustKubectl(t, "", "wait", "-n", ns, "--for=condition=Ready", "pod/cart", "--timeout=60s")
	ip := strings.TrimSpace(mustKubectl(t, "", "get", "-n", ns, "pod/cart", "-o", "jsonpath={.status.podIP}").Stdout)
	// The control plane's slice for the ordinary Service is written.
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "", "get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=cart", "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}")
		if strings.TrimSpace(r.Stdout) != ip {
			return "no EndpointSlice for service cart with " + ip + ": " + r.String()
		}
		return ""
	})

	manual := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: admin, namespace: %[1]s}
spec:
  ports: [{port: 9000, targetPort: %[3]d}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: admin-1, namespace: %[1]s, labels: {kubernetes.io/service-name: admin}}
addressType: IPv4
ports: [{port: %[3]d}]
endpoints: [{addresses: [%[2]q]}]
`, ns, ip, 15000)
	r := kubectl(t, manual, "apply", "-f", "-")
	want := fmt.Sprintf(`admission webhook "endpoints.loopguard.io" denied the request: endpointslice "admin-1" routes port 15000/TCP at ports[0].port to pod "cart" (endpoints[0].addresses[0] %s); that port is declared loopback-only by LoopbackService %s/envoy-admin`, ip, ns)
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Fatalf("kubectl apply should fail with\n%s\ngot: %s", want, r)
	}
	if r := kubectl(t, "", "get", "endpointslice", "admin-1", "-n", ns); r.Err == nil {
		t.Errorf("the EndpointSlice was stored: %s", r)
	}
	// The same to the pod's open port is an ordinary selector-less Service.
	ok := strings.ReplaceAll(manual, "15000", "8080")
	mustKubectl(t, ok, "apply", "-f", "-")
}
