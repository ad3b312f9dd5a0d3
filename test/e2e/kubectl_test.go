//go:build e2e

// Package e2e drives loopguard on the dev control plane (make dev-up) with
// kubectl, exactly as a user does. Run it with `make test-e2e`.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// The helpers shared with the node and in-cluster tests.
var (
	repoRoot   = devcluster.RepoRoot
	fileExists = devcluster.FileExists
)

type result = devcluster.Result

// kubectl runs kubectl against the dev cluster with stdin.
func kubectl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return devcluster.Kubectl(t, stdin, args...)
}

func mustKubectl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return devcluster.MustKubectl(t, stdin, args...)
}

func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	devcluster.Eventually(t, timeout, f)
}

// testNamespace creates a namespace for one test and deletes it after.
func testNamespace(t *testing.T) string { t.Helper(); return devcluster.Namespace(t, "e2e") }

func TestMain(m *testing.M) {
	if !fileExists(filepath.Join(repoRoot(), ".dev", "kubeconfig")) {
		fmt.Fprintln(os.Stderr, "FAIL: no dev cluster (.dev/kubeconfig missing): run `make dev-up` first, or `make test-e2e`")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
