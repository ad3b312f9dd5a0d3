//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// Hole 4: port-forward was the only guarded door into a protected pod, but
// edit also opens exec, attach, debug (an ephemeral container) and the API
// server's proxy, and each of them reaches the pod's loopback or its
// protected ports past every NetworkPolicy. The dev cluster has no node:
// the pods stay Pending, and a request that passes admission fails
// afterwards (no host assigned, no pod IP), which is how a test tells
// "admitted" from "refused by loopguard".

// hole4Pod is the protected pod: the application declares no port, its
// admin interface listens on 127.0.0.1:15000.
const hole4Pod = `apiVersion: v1
kind: Pod
metadata:
  name: cart
  labels: {app: cart}
spec:
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    stdin: true
`

// hole4Policy protects 15000 of app=cart pods; extra is appended to its
// spec. It is applied by the admin (a platform team's policy in the
// tenant's namespace) with --validate=false, so that on a loopguard that
// does not know spec.exec the fields are dropped and the test fails on
// what the tenant can do, not on the policy's schema.
func hole4Policy(t *testing.T, ns, extra string) {
	t.Helper()
	admin(t, fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata:
  name: guard
  namespace: %s
spec:
  podSelector:
    matchLabels: {app: cart}
  ports:
  - port: 15000
%s`, ns, extra), "apply", "--validate=false", "-f", "-")
	waitEnforced(t, ns, "loopbackservice", "guard")
}

// grantDebug lets the users run kubectl debug in ns. The built-in edit role
// grants exec, attach, port-forward and proxy but not
// pods/ephemeralcontainers (Kubernetes 1.37); clusters that let teams debug
// add a role like this one, and then edit plus it is the tenant.
func grantDebug(t *testing.T, ns string, users ...string) {
	t.Helper()
	admin(t, "", "-n", ns, "create", "role", "debugger", "--verb=patch,update", "--resource=pods/ephemeralcontainers")
	for _, u := range users {
		admin(t, "", "-n", ns, "create", "rolebinding", "debugger-"+u, "--role=debugger", "--user="+u)
	}
}

// notLoopguard asserts that a kubectl call got past admission: it may
// fail afterwards (no node runs the pod), but not because of loopguard.
func notLoopguard(t *testing.T, what string, r interface{ String() string }, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "loopguard.io") {
		t.Fatalf("%s: refused by loopguard, want it admitted (and recorded): %s", what, r)
	}
}

// waitAccessEvent waits for an Event on the policy guard whose note is
// want (who, which verb, which pod, the decision).
func waitAccessEvent(t *testing.T, ns, want string) {
	t.Helper()
	devcluster.Eventually(t, 30*time.Second, func() string {
		r := tryAdmin(t, "", "-n", ns, "get", "events.events.k8s.io", "--field-selector", "regarding.name=guard",
			"-o", `jsonpath={range .items[*]}{.regarding.kind} {.reason}: {.note}{"\n"}{end}`)
		for _, line := range strings.Split(r.Stdout, "\n") {
			if strings.HasPrefix(line, "LoopbackService ") && strings.HasSuffix(line, want) {
				return ""
			}
		}
		return fmt.Sprintf("no Event %q on LoopbackService %s/guard; events:\n%s", want, ns, r)
	})
}

// accessAttempts are the three doors of the hole, as the tenant opens them.
func hole4Exec(t *testing.T, tn *Tenant) devcluster.Result {
	return tn.Kubectl(t, "", "exec", "cart", "-c", "app", "--", "true")
}

func hole4Attach(t *testing.T, tn *Tenant) devcluster.Result {
	return tn.Kubectl(t, "", "attach", "cart", "-c", "app")
}

func hole4Debug(t *testing.T, tn *Tenant, container string) devcluster.Result {
	return tn.Kubectl(t, "", "debug", "cart", "--image=registry.k8s.io/pause:3.10", "-c", container, "--profile=general")
}

func TestHole4ExecAttachDebugAudited(t *testing.T) {
	tn := newTenant(t)
	grantDebug(t, tn.NS, tn.User)
	hole4Policy(t, tn.NS, "") // exec and debug default to Audit
	tn.Must(t, hole4Pod, "apply", "-f", "-")

	r := hole4Exec(t, tn)
	notLoopguard(t, "exec", r, r.Stderr)
	r = hole4Attach(t, tn)
	notLoopguard(t, "attach", r, r.Stderr)
	r = hole4Debug(t, tn, "dbg-audit")
	if r.Err != nil {
		t.Fatalf("debug under Audit must be admitted: %s", r)
	}

	pod := tn.NS + "/cart"
	waitAccessEvent(t, tn.NS, fmt.Sprintf("exec by %q to pod %s: audit", tn.User, pod))
	waitAccessEvent(t, tn.NS, fmt.Sprintf("attach by %q to pod %s: audit", tn.User, pod))
	waitAccessEvent(t, tn.NS, fmt.Sprintf("debug by %q to pod %s: audit", tn.User, pod))
}

func TestHole4ExecAttachDebugDenied(t *testing.T) {
	tn := newTenant(t)
	oncall := &Tenant{NS: tn.NS, User: "oncall-" + tn.NS}
	admin(t, "", "-n", tn.NS, "create", "rolebinding", "oncall-edit", "--clusterrole=edit", "--user="+oncall.User)
	grantDebug(t, tn.NS, tn.User, oncall.User)
	hole4Policy(t, tn.NS, fmt.Sprintf(`  exec:
    action: Deny
    allowed: [{kind: User, name: %[1]s}]
  debug:
    action: Deny
    allowed: [{kind: User, name: %[1]s}]
`, oncall.User))
	tn.Must(t, hole4Pod, "apply", "-f", "-")

	policy := "LoopbackService " + tn.NS + "/guard"
	for _, c := range []struct {
		name    string
		webhook string
		try     func() devcluster.Result
	}{
		{"exec", "exec.loopguard.io", func() devcluster.Result { return hole4Exec(t, tn) }},
		{"attach", "exec.loopguard.io", func() devcluster.Result { return hole4Attach(t, tn) }},
		{"debug", "debug.loopguard.io", func() devcluster.Result { return hole4Debug(t, tn, "dbg-tenant") }},
	} {
		r := c.try()
		if r.Err == nil || !strings.Contains(r.Stderr, fmt.Sprintf("admission webhook %q denied the request", c.webhook)) ||
			!strings.Contains(r.Stderr, policy) {
			t.Fatalf("%s by the tenant: want it refused by %s naming %s: %s", c.name, c.webhook, policy, r)
		}
		t.Logf("%s refused: %s", c.name, strings.TrimSpace(r.Stderr))
		waitAccessEvent(t, tn.NS, fmt.Sprintf("%s by %q to pod %s/cart: deny", c.name, tn.User, tn.NS))
	}

	// The break-glass subject passes, and is recorded.
	r := hole4Exec(t, oncall)
	notLoopguard(t, "exec by an allowed subject", r, r.Stderr)
	r = hole4Debug(t, oncall, "dbg-oncall")
	if r.Err != nil {
		t.Fatalf("debug by an allowed subject must be admitted: %s", r)
	}
	waitAccessEvent(t, tn.NS, fmt.Sprintf("exec by %q to pod %s/cart: audit", oncall.User, tn.NS))
	waitAccessEvent(t, tn.NS, fmt.Sprintf("debug by %q to pod %s/cart: audit", oncall.User, tn.NS))
}

func TestHole4ProxyToProtectedPort(t *testing.T) {
	tn := newTenant(t)
	// enforcementAction Audit lets the Service below exist (reported, not
	// refused); the proxy is a live connection and answers to portForward,
	// which defaults to Deny.
	hole4Policy(t, tn.NS, "  enforcementAction: Audit\n")
	tn.Must(t, hole4Pod, "apply", "-f", "-")
	tn.Must(t, `apiVersion: v1
kind: Service
metadata:
  name: cart-admin
spec:
  selector: {app: cart}
  ports:
  - {name: admin, port: 80, targetPort: 15000}
  - {name: web, port: 8080, targetPort: 8080}
`, "apply", "-f", "-")

	base := "/api/v1/namespaces/" + tn.NS
	for _, path := range []string{
		base + "/pods/cart:15000/proxy/",
		base + "/pods/https:cart:15000/proxy/stats",
		base + "/services/cart-admin:80/proxy/",
		base + "/services/cart-admin:admin/proxy/",
		base + "/services/http:cart-admin:admin/proxy/",
	} {
		r := tn.Kubectl(t, "", "get", "--raw", path)
		if r.Err == nil || !strings.Contains(r.Stderr, `admission webhook "proxy.loopguard.io" denied the request`) ||
			!strings.Contains(r.Stderr, "LoopbackService "+tn.NS+"/guard") {
			t.Fatalf("GET %s by the tenant: want it refused by proxy.loopguard.io naming the policy: %s", path, r)
		}
		t.Logf("GET %s refused: %s", path, strings.TrimSpace(r.Stderr))
	}
	// Ports the policy does not protect stay open to the proxy.
	for _, path := range []string{base + "/pods/cart:8080/proxy/", base + "/services/cart-admin:web/proxy/"} {
		r := tn.Kubectl(t, "", "get", "--raw", path)
		notLoopguard(t, "GET "+path, r, r.Stderr)
	}
	waitAccessEvent(t, tn.NS, fmt.Sprintf("proxy by %q to pod %s/cart port 15000: deny", tn.User, tn.NS))
}
