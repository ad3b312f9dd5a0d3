package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	clbsGVR = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "clusterloopbackservices"}
	lbsGVR  = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "loopbackservices"}
)

// loopguardEngine is the manager hack/dev.sh runs on the compare cluster
// (as its own ServiceAccount, with the RBAC config/ installs); the harness
// only registers and unregisters its webhook configuration.
type loopguardEngine struct{ e *env }

func (l *loopguardEngine) Name() string { return "loopguard" }

func (l *loopguardEngine) PID() int {
	b, err := os.ReadFile(filepath.Join(l.e.opts.devDir, "run/manager.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (l *loopguardEngine) Start(ctx context.Context) error {
	if l.PID() == 0 {
		return fmt.Errorf("loopguard's manager is not running on the compare cluster (DEV_DIR=%s hack/dev.sh up)", l.e.opts.devDir)
	}
	return l.e.registerLoopguard(ctx)
}

func (l *loopguardEngine) InstallCasePolicies(ctx context.Context) error {
	b, err := l.e.policyFile("loopguard", "loopback-ports.yaml")
	if err != nil {
		return err
	}
	return l.e.applyRetry(ctx, b, time.Minute)
}

func (l *loopguardEngine) RemoveCasePolicies(ctx context.Context) error {
	err := l.e.dyn.Resource(clbsGVR).Delete(ctx, "cart-loopback", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// SetBenchPolicies uses namespaced LoopbackServices, the common form.
func (l *loopguardEngine) SetBenchPolicies(ctx context.Context, ns string, n int) error {
	return setNumbered(ctx, l.e, lbsGVR, ns, "bench-", n, func(i int) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
			"metadata": map[string]any{"name": fmt.Sprintf("bench-%04d", i), "namespace": ns},
			"spec": map[string]any{
				"podSelector": map[string]any{"matchLabels": map[string]any{"app": "cart"}},
				"ports":       []any{map[string]any{"port": int64(benchPort(i))}},
			},
		}}
	})
}

// Kill stops the manager with hack/dev.sh (its webhook stays registered).
func (l *loopguardEngine) Kill(ctx context.Context) error {
	return l.devsh(ctx, "stop", "managers")
}

// Stop restarts the manager if Kill stopped it, and unregisters the
// webhook: the compare cluster is left as hack/dev.sh up made it, minus the
// webhook while the peers run.
func (l *loopguardEngine) Stop(ctx context.Context) {
	if err := l.devsh(ctx, "up"); err != nil {
		l.e.logf("loopguard: restarting the manager failed: %v", err)
	}
	if err := l.e.unregisterLoopguard(ctx); err != nil {
		l.e.logf("loopguard: %v", err)
	}
}

func (l *loopguardEngine) devsh(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(l.e.opts.root, "hack/dev.sh"), args...)
	cmd.Dir = l.e.opts.root
	cmd.Env = append(os.Environ(), "DEV_DIR="+l.e.opts.devDir, "DEV_PORT_OFFSET="+devPortOffset())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("hack/dev.sh %s: %w: %s", strings.Join(args, " "), err, lastLines(string(out), 10))
	}
	return nil
}

func devPortOffset() string {
	if v := os.Getenv("DEV_PORT_OFFSET"); v != "" {
		return v
	}
	return "100"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
