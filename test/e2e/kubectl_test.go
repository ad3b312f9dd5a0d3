//go:build e2e

// Package e2e drives loopguard on the dev control plane (make dev-up) with
// kubectl, exactly as a user does. Run it with `make test-e2e`.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// kubectlBin prefers the kubectl built with the control plane (same
// version), then the one on PATH.
func kubectlBin() string {
	if p := filepath.Join(repoRoot(), "bin", "k8s", "current", "kubectl"); fileExists(p) {
		return p
	}
	return "kubectl"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
}

// kubectl runs kubectl against the dev cluster with stdin.
func kubectl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(kubectlBin(), args...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(repoRoot(), ".dev", "kubeconfig"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

func mustKubectl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := kubectl(t, stdin, args...)
	if r.err != nil {
		t.Fatalf("kubectl %s failed: %s", strings.Join(args, " "), r)
	}
	return r
}

// eventually retries f until it returns "" or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testNamespace creates a namespace for one test and deletes it after.
func testNamespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("e2e-%d", time.Now().UnixNano()%1_000_000_000)
	mustKubectl(t, "", "create", "namespace", ns)
	t.Cleanup(func() { kubectl(t, "", "delete", "namespace", ns, "--wait=false") })
	return ns
}

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
