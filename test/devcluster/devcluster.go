// Package devcluster holds what the e2e, node and in-cluster tests share to
// drive the dev cluster (hack/dev.sh up) with kubectl as a user does: the
// repository's paths, bounded commands, retries and throw-away namespaces.
package devcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// KubectlTimeout bounds every kubectl call.
const KubectlTimeout = 2 * time.Minute

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// DevDir is the dev cluster's state directory.
func DevDir() string { return filepath.Join(RepoRoot(), ".dev") }

// Kubeconfig is the dev cluster's admin kubeconfig.
func Kubeconfig() string { return filepath.Join(DevDir(), "kubeconfig") }

// KubeconfigEnv is the environment that points kubectl at the dev cluster.
func KubeconfigEnv() []string { return []string{"KUBECONFIG=" + Kubeconfig()} }

// FileExists reports whether p exists.
func FileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// KubectlBin prefers the kubectl built with the control plane (same
// version), then the one on PATH.
func KubectlBin() string {
	if p := filepath.Join(RepoRoot(), "bin", "k8s", "current", "kubectl"); FileExists(p) {
		return p
	}
	return "kubectl"
}

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Err            error
}

func (r Result) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.Err, r.Stdout, r.Stderr)
}

// Run runs a command from the repository root with extra environment and
// stdin, bounded by timeout.
func Run(timeout time.Duration, env []string, stdin, name string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, timeout)
	}
	return Result{out.String(), errb.String(), err}
}

// Kubectl runs kubectl against the dev cluster with stdin.
func Kubectl(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	return Run(KubectlTimeout, KubeconfigEnv(), stdin, KubectlBin(), args...)
}

// MustKubectl is Kubectl that fails the test when kubectl fails.
func MustKubectl(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	r := Kubectl(t, stdin, args...)
	if r.Err != nil {
		t.Fatalf("kubectl %s failed: %s", strings.Join(args, " "), r)
	}
	return r
}

// Eventually retries f until it returns "" and fails the test with f's
// last message once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, f func() string) {
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

// Namespace creates a namespace named prefix-<number> with the labels
// given as key=value, and deletes it when the test ends.
func Namespace(t testing.TB, prefix string, labels ...string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
	MustKubectl(t, "", "create", "namespace", name)
	if len(labels) > 0 {
		MustKubectl(t, "", append([]string{"label", "namespace", name}, labels...)...)
	}
	t.Cleanup(func() { Kubectl(t, "", "delete", "namespace", name, "--wait=false") })
	// The ServiceAccount admission plugin refuses pods until
	// kube-controller-manager has created the namespace's default
	// ServiceAccount, which can take seconds after an API server restart;
	// a test's first pod must meet loopguard, not that race.
	Eventually(t, 90*time.Second, func() string {
		if r := Kubectl(t, "", "get", "serviceaccount", "default", "-n", name, "-o", "name"); r.Err != nil {
			return "kube-controller-manager has not created ServiceAccount " + name + "/default: " + r.String()
		}
		return ""
	})
	return name
}

// KeepAliveRace tells whether msg is the API server's error when a pooled
// connection to a webhook was closed under a request it had just written:
// the one loss no webhook can prevent when a replica stops, because the
// API server's HTTP/1.1 client does not retry a POST
// (kubernetes/kubernetes#127335).
func KeepAliveRace(msg string) bool {
	return strings.Contains(msg, "failed calling webhook") && strings.HasSuffix(strings.TrimSpace(msg), ": EOF")
}
