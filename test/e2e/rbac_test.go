//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
		{"create", "endpointslices.discovery.k8s.io", "shop", false},

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
