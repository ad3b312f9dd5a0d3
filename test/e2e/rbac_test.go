//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestLeastPrivilege installs the RBAC of config/default and asks the API
// server what loopguard's ServiceAccount may and may not do.
func TestLeastPrivilege(t *testing.T) {
	cmd := exec.Command("go", "tool", "kustomize", "build", "config/default")
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	var rbac []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		switch meta.Kind {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, doc)
		}
	}
	path := filepath.Join(t.TempDir(), "rbac.yaml")
	writeFile(t, path, strings.Join(rbac, "\n---\n"))
	mustKubectl(t, "", "apply", "--server-side", "-f", path)

	const sa = "system:serviceaccount:loopguard-system:loopguard-controller-manager"
	cases := []struct {
		verb, resource, namespace string
		want                      bool
	}{
		{"list", "pods", "", true},
		{"watch", "services", "", true},
		{"list", "deployments.apps", "", true},
		{"list", "cronjobs.batch", "", true},
		{"create", "networkpolicies.networking.k8s.io", "shop", true},
		{"delete", "networkpolicies.networking.k8s.io", "shop", true},
		{"patch", "loopbackservices.loopguard.io --subresource=status", "shop", true},
		{"patch", "clusterloopbackservices.loopguard.io --subresource=status", "", true},
		{"create", "events.events.k8s.io", "shop", true},
		{"create", "tokenreviews.authentication.k8s.io", "", true},
		{"create", "subjectaccessreviews.authorization.k8s.io", "", true},
		{"get", "leases.coordination.k8s.io", "loopguard-system", true},
		{"create", "events", "loopguard-system", true},
		{"watch", "nodebindreports.loopguard.io", "", true},
		{"watch", "endpointslices.discovery.k8s.io", "", true},
		// A namespace's OpenReports Report, read and written one by one
		// (never listed: a reconcile reads its own by name).
		{"create", "reports.openreports.io", "shop", true},
		{"update", "reports.openreports.io", "shop", true},
		{"delete", "reports.openreports.io", "shop", true},
		{"list", "reports.openreports.io", "", false},
		{"update", "clusterreports.openreports.io", "", true},
		{"create", "endpointslices.discovery.k8s.io", "shop", false},
		// Its own webhook registration, by name, and nothing else: never
		// create one (the install does), never another's.
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/loopguard-validating-webhook-configuration", "", true},
		{"patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/loopguard-validating-webhook-configuration", "", true},
		{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/other-webhooks", "", false},
		{"delete", "validatingwebhookconfigurations.admissionregistration.k8s.io/loopguard-validating-webhook-configuration", "", false},
		{"create", "validatingwebhookconfigurations.admissionregistration.k8s.io", "", false},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/loopguard-validating-webhook-configuration", "", false},
		{"update", "validatingadmissionpolicies.admissionregistration.k8s.io", "", false},

		{"get", "secrets", "default", false},
		{"list", "secrets", "", false},
		{"create", "pods", "shop", false},
		{"delete", "pods", "shop", false},
		{"update", "deployments.apps", "shop", false},
		{"update", "loopbackservices.loopguard.io", "shop", false},
		{"delete", "loopbackservices.loopguard.io", "shop", false},
		{"update", "nodebindreports.loopguard.io --subresource=status", "", false}, // only the node agents write them
		{"get", "leases.coordination.k8s.io", "kube-system", false},
		{"create", "events", "default", false},
		{"create", "clusterrolebindings.rbac.authorization.k8s.io", "", false},
		{"escalate", "clusterroles.rbac.authorization.k8s.io", "", false},
		{"*", "*", "", false},
	}
	for _, tc := range cases {
		if res, ok := strings.CutSuffix(tc.resource, ".openreports.io"); ok {
			// The OpenReports CRDs are optional and this cluster may not
			// serve them, so kubectl can-i cannot resolve the resource:
			// ask the authorizer directly, by group and resource.
			if got := subjectAllowed(t, sa, tc.verb, "openreports.io", res, tc.namespace); got != tc.want {
				t.Errorf("SubjectAccessReview %s %s -n %q: allowed=%v, want %v", tc.verb, tc.resource, tc.namespace, got, tc.want)
			}
			continue
		}
		args := append([]string{"auth", "can-i", tc.verb}, strings.Fields(tc.resource)...)
		args = append(args, "--as="+sa)
		if tc.namespace != "" {
			args = append(args, "-n", tc.namespace)
		}
		r := kubectl(t, "", args...)
		got := strings.TrimSpace(r.Stdout) == "yes"
		if got != tc.want {
			t.Errorf("can-i %s %s -n %q: got %q, want allowed=%v (%s)", tc.verb, tc.resource, tc.namespace, strings.TrimSpace(r.Stdout), tc.want, strings.TrimSpace(r.Stderr))
		}
	}
}

// TestTenantRoles checks the trust model the README's "Security model"
// states: with config/rbac's aggregation, a namespace's edit role may write
// that namespace's LoopbackServices (a team protects its own ports) but not
// their status, not ClusterLoopbackServices (platform rules) and not the
// node agents' NodeBindReports; view may only read. The doors edit opens
// into a pod (exec, attach, port-forward, proxy, ephemeral containers) are
// listed too: each is one loopguard guards.
func TestTenantRoles(t *testing.T) {
	mustKubectl(t, "", "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(repoRoot(), "config", "rbac", "policy_viewer_role.yaml"))
	ns := testNamespace(t)
	mustKubectl(t, "", "-n", ns, "create", "rolebinding", "tenant-edit", "--clusterrole=edit", "--user=tenant-editor")
	mustKubectl(t, "", "-n", ns, "create", "rolebinding", "tenant-view", "--clusterrole=view", "--user=tenant-viewer")
	// The aggregation controller fills edit and view asynchronously.
	eventually(t, time.Minute, func() string {
		for _, u := range []string{"tenant-editor:create", "tenant-viewer:get"} {
			user, verb, _ := strings.Cut(u, ":")
			if r := kubectl(t, "", "auth", "can-i", verb, "loopbackservices.loopguard.io", "-n", ns, "--as="+user); strings.TrimSpace(r.Stdout) != "yes" {
				return user + " may not " + verb + " loopbackservices yet"
			}
		}
		return ""
	})
	cases := []struct {
		user, verb, resource string
		namespaced, want     bool
	}{
		{"tenant-editor", "create", "loopbackservices.loopguard.io", true, true},
		{"tenant-editor", "delete", "loopbackservices.loopguard.io", true, true},
		{"tenant-editor", "patch", "loopbackservices.loopguard.io --subresource=status", true, false},
		{"tenant-editor", "create", "clusterloopbackservices.loopguard.io", false, false},
		{"tenant-editor", "update", "clusterloopbackservices.loopguard.io", false, false},
		{"tenant-editor", "delete", "clusterloopbackservices.loopguard.io", false, false},
		{"tenant-editor", "create", "nodebindreports.loopguard.io", false, false},
		{"tenant-editor", "update", "validatingwebhookconfigurations.admissionregistration.k8s.io", false, false},
		{"tenant-editor", "update", "namespaces", false, false}, // namespace labels select cluster policies
		{"tenant-editor", "create", "pods", true, true},
		{"tenant-editor", "create", "networkpolicies.networking.k8s.io", true, true},
		{"tenant-editor", "create", "pods --subresource=exec", true, true},
		{"tenant-editor", "create", "pods --subresource=attach", true, true},
		{"tenant-editor", "create", "pods --subresource=portforward", true, true},
		{"tenant-editor", "create", "pods --subresource=proxy", true, true},
		{"tenant-editor", "patch", "pods --subresource=ephemeralcontainers", true, false}, // not in edit as of 1.37; clusters that grant it get spec.debug
		{"tenant-editor", "get", "services --subresource=proxy", true, true},
		{"tenant-viewer", "get", "loopbackservices.loopguard.io", true, true},
		{"tenant-viewer", "create", "loopbackservices.loopguard.io", true, false},
		{"tenant-viewer", "create", "pods --subresource=portforward", true, false},
	}
	for _, tc := range cases {
		args := append([]string{"auth", "can-i", tc.verb}, strings.Fields(tc.resource)...)
		args = append(args, "--as="+tc.user)
		if tc.namespaced {
			args = append(args, "-n", ns)
		}
		r := kubectl(t, "", args...)
		if got := strings.TrimSpace(r.Stdout) == "yes"; got != tc.want {
			t.Errorf("%s can-i %s %s: got %q, want allowed=%v (%s)", tc.user, tc.verb, tc.resource, strings.TrimSpace(r.Stdout), tc.want, strings.TrimSpace(r.Stderr))
		}
	}
}

// subjectAllowed asks the API server's authorizer, through a
// SubjectAccessReview, whether user may verb group/resource in namespace
// (cluster-wide when ""), whether or not the server serves that resource.
func subjectAllowed(t *testing.T, user, verb, group, resource, namespace string) bool {
	t.Helper()
	sar := fmt.Sprintf(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":%q,"resourceAttributes":{"verb":%q,"group":%q,"resource":%q,"namespace":%q}}}`,
		user, verb, group, resource, namespace)
	r := mustKubectl(t, sar, "create", "-f", "-", "-o", "jsonpath={.status.allowed}")
	return strings.TrimSpace(r.Stdout) == "true"
}
