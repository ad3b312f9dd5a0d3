//go:build e2e

package redteam

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole7TargetRefSpoof: a hand-written EndpointSlice that lists the
// protected pod's IP but names an unprotected pod in its targetRef routes
// to the protected pod (kube-proxy reads addresses, never targetRef). The
// webhook must judge the IP's owner as well as the reference.
func TestHole7TargetRefSpoof(t *testing.T) {
	tn := newTenant(t)
	grantEndpointSlices(t, tn)
	tn.Must(t, protectCart(tn.NS, "Deny"), "apply", "-f", "-")
	waitEnforced(t, tn.NS, "loopbackservice", "envoy-admin")

	cartIP := runPod(t, tn, tn.NS, "cart-0", "app=cart", 7, 10)
	runPod(t, tn, tn.NS, "web-0", "app=web", 7, 11)
	tn.Must(t, selectorlessService("manual"), "apply", "-f", "-")

	r := tn.Refused(t, "denied the request",
		endpointSlice("manual-spoof", "manual", cartIP, "web-0", "", 15000), "create", "-f", "-")
	if !strings.Contains(r.Stderr, `"cart-0"`) || !strings.Contains(r.Stderr, "15000") {
		t.Errorf("the denial should name the pod that owns the IP and the port: %s", r.Stderr)
	}

	// The honest slices still pass: the unprotected pod by IP and by
	// reference, and the protected pod on a port no policy protects.
	webIP := podIP(7, 11)
	tn.Must(t, endpointSlice("manual-web", "manual", webIP, "web-0", "", 15000), "create", "-f", "-")
	tn.Must(t, endpointSlice("manual-cart-http", "manual", cartIP, "cart-0", "", 8080), "create", "-f", "-")
}

// grantEndpointSlices lets the tenant write EndpointSlices in its own
// namespace when edit does not: since CVE-2021-25740 the built-in edit role
// no longer grants endpoints or endpointslices writes, but some platforms
// give tenants exactly create/update on them with an extra Role, which is
// the tenant these tests attack as.
func grantEndpointSlices(t *testing.T, tn *Tenant) {
	t.Helper()
	r := tn.Kubectl(t, "", "auth", "can-i", "create", "endpointslices.discovery.k8s.io")
	if strings.TrimSpace(r.Stdout) == "yes" {
		return
	}
	admin(t, "", "-n", tn.NS, "create", "role", "endpointslice-writer",
		"--verb=create,update,patch,get,list", "--resource=endpointslices.discovery.k8s.io")
	admin(t, "", "-n", tn.NS, "create", "rolebinding", "endpointslice-writer", "--role=endpointslice-writer", "--user="+tn.User)
	devcluster.Eventually(t, 30*time.Second, func() string {
		r := tn.Kubectl(t, "", "auth", "can-i", "create", "endpointslices.discovery.k8s.io")
		if strings.TrimSpace(r.Stdout) != "yes" {
			return "the tenant may not write endpointslices yet: " + r.String()
		}
		return ""
	})
}

// protectCart is a LoopbackService protecting 15000 on app=cart pods.
func protectCart(ns, action string) string {
	return fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata:
  name: envoy-admin
  namespace: %s
spec:
  podSelector:
    matchLabels:
      app: cart
  ports:
  - port: 15000
  enforcementAction: %s
`, ns, action)
}

// podIP is an address of the pod network that no real pod of the dev
// cluster gets (its node's pods are in 10.244.0.0/24).
func podIP(a, b int) string { return fmt.Sprintf("10.244.%d.%d", 100+a, b) }

// runPod creates a pod that declares no port as the tenant (or the admin
// when tn is nil) and gives it podIP(a, b) the way a kubelet would: the
// pods of a cluster without a node stay Pending and have no IP.
var nodeNameUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// kubeletlessNode is a Node object no kubelet runs, made once per test:
// pods bound to it keep the IP the admin gives them, as on a cluster
// without a node; on the dev cluster's real node the kubelet would replace
// it with the one it allocates.
func kubeletlessNode(t *testing.T) string {
	t.Helper()
	name := "redteam-" + nodeNameUnsafe.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(name) > 63 {
		name = name[:63]
	}
	name = strings.TrimRight(name, "-")
	if r := tryAdmin(t, "", "get", "node", name, "-o", "name"); r.Err == nil {
		return name
	}
	admin(t, fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n", name), "create", "-f", "-")
	t.Cleanup(func() { tryAdmin(t, "", "delete", "node", name, "--wait=false") })
	return name
}

func runPod(t *testing.T, tn *Tenant, ns, name, label string, a, b int) string {
	t.Helper()
	kv := strings.SplitN(label, "=", 2)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels: {%s: %s}
spec:
  nodeName: %s
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
`, name, ns, kv[0], kv[1], kubeletlessNode(t))
	if tn != nil {
		tn.Must(t, manifest, "apply", "-f", "-")
	} else {
		admin(t, manifest, "apply", "-f", "-")
	}
	ip := podIP(a, b)
	admin(t, "", "-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge",
		"-p", fmt.Sprintf(`{"status":{"podIP":%q,"podIPs":[{"ip":%q}]}}`, ip, ip))
	return ip
}

// selectorlessService is a Service without a selector: its endpoints are
// whatever EndpointSlices name it.
func selectorlessService(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
spec:
  ports:
  - port: 80
    targetPort: 8080
`, name)
}

// endpointSlice is a hand-written slice of service listing ip on port,
// with a targetRef to the pod refName (none when empty) in refNamespace
// (the slice's when empty).
func endpointSlice(name, service, ip, refName, refNamespace string, port int) string {
	ref := ""
	if refName != "" {
		ref = "\n  targetRef:\n    kind: Pod\n    name: " + refName
		if refNamespace != "" {
			ref += "\n    namespace: " + refNamespace
		}
	}
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  labels:
    kubernetes.io/service-name: %s
addressType: IPv4
ports:
- name: http
  port: %d
  protocol: TCP
endpoints:
- addresses: [%q]%s
`, name, service, port, ip, ref)
}
