package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// engine is one admission engine under comparison.
type engine interface {
	Name() string
	// Start runs the engine and registers its webhooks; it returns once the
	// engine answers.
	Start(ctx context.Context) error
	// InstallCasePolicies installs the policy of bench/peers/policies/<name>.
	InstallCasePolicies(ctx context.Context) error
	RemoveCasePolicies(ctx context.Context) error
	// SetBenchPolicies makes exactly n benchmark policies exist, policy i
	// protecting port benchPort(i) of pods labelled app=cart in the
	// engine's bench namespace ns.
	SetBenchPolicies(ctx context.Context, ns string, n int) error
	// PID is the engine's process (0: it runs inside the API server).
	PID() int
	// Kill stops the process but leaves its webhooks registered: what the
	// cluster sees when the engine is down.
	Kill(ctx context.Context) error
	// Stop unregisters the webhooks, stops the process and removes
	// everything the engine installed.
	Stop(ctx context.Context)
}

func benchPort(i int) int { return 20000 + i }

// process is a peer started as a host process.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProcess(logPath string, env []string, bin string, args ...string) (*process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *process) pid() int {
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 20s.
func (p *process) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last lines of the process log, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// rssMiB reads the resident set size of pid (and its children, none here).
func rssMiB(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// kubectlRun runs kubectl against the compare cluster.
func (e *env) kubectlRun(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.kubectl, append([]string{"--kubeconfig", e.kubecfg}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// apply server-side applies YAML documents.
func (e *env) apply(ctx context.Context, yaml []byte) error {
	_, err := e.kubectlRun(ctx, yaml, "apply", "--server-side", "--force-conflicts", "--field-manager=loopguard-compare", "-f", "-")
	return err
}

// applyRetry retries apply while a just-started engine's webhook or a
// just-created CRD is not yet serving.
func (e *env) applyRetry(ctx context.Context, yaml []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := e.apply(ctx, yaml)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(2 * time.Second)
	}
}

func (e *env) deleteYAML(ctx context.Context, yaml []byte) {
	_, _ = e.kubectlRun(ctx, yaml, "delete", "--ignore-not-found", "--wait=false", "-f", "-")
}

// deleteCRDs deletes a peer's CRDs and waits until they are gone: the
// same peer (or its other configuration) may start again at once, and a
// CRD still terminating would be deleted under it.
func (e *env) deleteCRDs(ctx context.Context, yaml []byte) {
	if _, err := e.kubectlRun(ctx, yaml, "delete", "--ignore-not-found", "--timeout=180s", "-f", "-"); err != nil {
		e.logf("deleting CRDs: %v", err)
	}
}

func (e *env) policyFile(engine, name string) ([]byte, error) {
	p := filepath.Join(e.opts.root, "bench/peers/policies", engine, name)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", p, err)
	}
	return b, nil
}

// moduleDir is where the Go module cache holds a peer's module source (its
// CRDs and manifests), as resolved by the peer's tool module.
func (e *env) moduleDir(tool, module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = filepath.Join(e.opts.root, "bench/peers/tools", tool)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("failed to locate %s (go list -m in bench/peers/tools/%s): %w", module, tool, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
