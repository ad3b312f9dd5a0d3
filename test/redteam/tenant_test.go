//go:build e2e

// Package redteam attacks loopguard as a tenant would: a user bound only to
// the built-in edit role in one namespace, through impersonation against
// the dev cluster (make dev-up). One test per way around loopguard that
// issue #15 lists; each must fail on the code before its fix.
package redteam

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

func TestMain(m *testing.M) {
	if !devcluster.FileExists(devcluster.Kubeconfig()) {
		fmt.Fprintln(os.Stderr, "FAIL: no dev cluster (.dev/kubeconfig missing): run `make dev-up` first, or `make test-e2e`")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// admin runs kubectl as the cluster admin and fails the test on error.
func admin(t *testing.T, stdin string, args ...string) devcluster.Result {
	t.Helper()
	return devcluster.MustKubectl(t, stdin, args...)
}

// tryAdmin runs kubectl as the cluster admin.
func tryAdmin(t *testing.T, stdin string, args ...string) devcluster.Result {
	t.Helper()
	return devcluster.Kubectl(t, stdin, args...)
}

// Tenant is a user bound only to the built-in edit role (with loopguard's
// aggregated LoopbackService rules, as config/rbac ships them) in NS.
type Tenant struct {
	NS   string
	User string
}

// newTenant creates a namespace and a user who may edit it and nothing
// else. labels are key=value namespace labels, set by the admin.
func newTenant(t *testing.T, labels ...string) *Tenant {
	t.Helper()
	ns := devcluster.Namespace(t, "redteam", labels...)
	// loopguard's aggregation into edit/view, as config/rbac installs it.
	admin(t, "", "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(devcluster.RepoRoot(), "config", "rbac", "policy_viewer_role.yaml"))
	tn := &Tenant{NS: ns, User: "tenant-" + ns}
	admin(t, "", "-n", ns, "create", "rolebinding", "tenant-edit", "--clusterrole=edit", "--user="+tn.User)
	// The aggregation controller fills edit asynchronously: wait until the
	// tenant really may write LoopbackServices.
	devcluster.Eventually(t, time.Minute, func() string {
		r := tn.Kubectl(t, "", "auth", "can-i", "create", "loopbackservices.loopguard.io")
		if strings.TrimSpace(r.Stdout) != "yes" {
			return "edit does not grant loopbackservices yet: " + r.String()
		}
		return ""
	})
	return tn
}

// Kubectl runs kubectl as the tenant in its namespace.
func (tn *Tenant) Kubectl(t *testing.T, stdin string, args ...string) devcluster.Result {
	t.Helper()
	args = append([]string{"--as=" + tn.User, "--as-group=system:authenticated", "-n", tn.NS}, args...)
	return devcluster.Kubectl(t, stdin, args...)
}

// Must is Kubectl that fails the test when kubectl fails.
func (tn *Tenant) Must(t *testing.T, stdin string, args ...string) devcluster.Result {
	t.Helper()
	r := tn.Kubectl(t, stdin, args...)
	if r.Err != nil {
		t.Fatalf("tenant: kubectl %s failed: %s", strings.Join(args, " "), r)
	}
	return r
}

// Refused asserts that the tenant's kubectl call is refused by loopguard
// (the admission webhook or guard named in want) and returns its output.
func (tn *Tenant) Refused(t *testing.T, want, stdin string, args ...string) devcluster.Result {
	t.Helper()
	r := tn.Kubectl(t, stdin, args...)
	if r.Err == nil {
		t.Fatalf("tenant: kubectl %s was admitted; want it refused by loopguard: %s", strings.Join(args, " "), r)
	}
	if !strings.Contains(r.Stderr, want) {
		t.Fatalf("tenant: kubectl %s failed, but not with %q: %s", strings.Join(args, " "), want, r)
	}
	return r
}

// DeleteHeld deletes an object of the tenant's that a finalizer holds and
// waits until it is terminating.
func (tn *Tenant) DeleteHeld(t *testing.T, resource, name string) {
	t.Helper()
	tn.Must(t, "", "delete", resource, name, "--wait=false")
	devcluster.Eventually(t, time.Minute, func() string {
		r := tn.Kubectl(t, "", "get", resource, name, "-o", "jsonpath={.metadata.deletionTimestamp}")
		if strings.TrimSpace(r.Stdout) == "" {
			return resource + " " + name + " not terminating yet: " + r.String()
		}
		return ""
	})
}

// waitEnforced waits until the policy reports Enforced (the webhook
// registration covers it, so every write it judges is judged).
func waitEnforced(t *testing.T, ns, kind, name string) {
	t.Helper()
	args := []string{"get", kind, name, "-o", `jsonpath={.status.conditions[?(@.type=="Enforced")].status}`}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	devcluster.Eventually(t, time.Minute, func() string {
		r := tryAdmin(t, "", args...)
		if strings.TrimSpace(r.Stdout) != "True" {
			return fmt.Sprintf("%s %s/%s not Ready: %s", kind, ns, name, r)
		}
		return ""
	})
}
