//go:build node

// Package node tests the dev cluster's real node (hack/dev.sh up as root,
// see docs/testing.md) with kubectl, as a user would: the node is Ready,
// pods run, and their sockets behave as in any cluster — in particular a
// listener bound to 127.0.0.1 in a pod is not reachable on the pod IP but
// is through kubectl port-forward, the hole a port-forward guard must
// close. Run it with `make test-node` (root).
//
// Network rule: the tests connect only to loopback and to pod IPs inside
// the harness's pod range 10.244.0.0/24; any other address is refused by
// podIP before a connection is tried.
//
// teardown_test.go runs `hack/dev.sh down`, checks that the machine is left
// as it was, and brings the cluster back up: it sorts (and so runs) last.
package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

const (
	nodeName      = "loopguard-dev-node"
	listenerImage = "loopguard-listener:dev"
	podCIDR       = "10.244.0.0/24"
)

// The helpers shared with the e2e and in-cluster tests.
var (
	repoRoot      = devcluster.RepoRoot
	devDir        = devcluster.DevDir
	kubectlBin    = devcluster.KubectlBin
	fileExists    = devcluster.FileExists
	kubeconfigEnv = devcluster.KubeconfigEnv
)

type result = devcluster.Result

// run runs a command from the repository root, bounded by timeout.
func run(timeout time.Duration, env []string, name string, args ...string) result {
	return devcluster.Run(timeout, env, "", name, args...)
}

func kubectl(t *testing.T, args ...string) result {
	t.Helper()
	return devcluster.Kubectl(t, "", args...)
}

func mustKubectl(t *testing.T, args ...string) result {
	t.Helper()
	return devcluster.MustKubectl(t, "", args...)
}

func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	devcluster.Eventually(t, timeout, f)
}

func testNamespace(t *testing.T) string { t.Helper(); return devcluster.Namespace(t, "node") }

// podIP returns the pod's IP, failing the test unless it is in the
// harness's pod range: the tests never connect anywhere else.
func podIP(t *testing.T, ns, pod string) string {
	t.Helper()
	ip := strings.TrimSpace(mustKubectl(t, "get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.podIP}").Stdout)
	_, pods, _ := net.ParseCIDR(podCIDR)
	if parsed := net.ParseIP(ip); parsed == nil || !pods.Contains(parsed) {
		t.Fatalf("pod %s/%s has IP %q, outside the harness's pod range %s: refusing to connect", ns, pod, ip, podCIDR)
	}
	return ip
}

// answer connects to addr over network and returns what the listener says.
func answer(network, addr string) (string, error) {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if network == "udp" {
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(buf[:n])), nil
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func TestMain(m *testing.M) {
	if !fileExists(filepath.Join(devDir(), "kubeconfig")) {
		fmt.Fprintln(os.Stderr, "FAIL: no dev cluster (.dev/kubeconfig missing): run `DEV_NODE=require hack/dev.sh up` first, or `make test-node`")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestOneReadyNode(t *testing.T) {
	r := mustKubectl(t, "get", "nodes", "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}`)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("want exactly one node, got:\n%s", r.Stdout)
	}
	if got, want := lines[0], nodeName+" True 10.245.0.1"; got != want {
		t.Fatalf("node: got %q, want %q (name, Ready, InternalIP)", got, want)
	}
	t.Logf("kubectl get nodes:\n%s", mustKubectl(t, "get", "nodes", "-o", "wide").Stdout)
}

// TestListenerPod runs the listener with its image's default arguments:
// tcp://0.0.0.0:8080, tcp://127.0.0.1:15000 and udp://[::]:5353.
func TestListenerPod(t *testing.T) {
	ns := testNamespace(t)
	const pod = "listener"
	start := time.Now()
	mustKubectl(t, "run", pod, "-n", ns, "--image="+listenerImage, "--image-pull-policy=Never", "--restart=Never")
	if r := kubectl(t, "wait", "--for=condition=Ready", "pod/"+pod, "-n", ns, "--timeout=60s"); r.Err != nil {
		d := kubectl(t, "describe", "pod", pod, "-n", ns)
		t.Fatalf("pod not Ready within 60s: %s\n%s", r, d.Stdout)
	}
	t.Logf("pod Running and Ready %s after kubectl run", time.Since(start).Round(10*time.Millisecond))
	ip := podIP(t, ns, pod)

	t.Run("host reaches a 0.0.0.0 listener on the pod IP", func(t *testing.T) {
		got, err := answer("tcp", net.JoinHostPort(ip, "8080"))
		if err != nil || got != pod {
			t.Fatalf("TCP %s:8080 answered %q, %v; want the pod name %q", ip, got, err, pod)
		}
		got, err = answer("udp", net.JoinHostPort(ip, "5353"))
		if err != nil || got != pod {
			t.Fatalf("UDP %s:5353 answered %q, %v; want the pod name %q", ip, got, err, pod)
		}
	})

	t.Run("127.0.0.1 listener answers inside the pod", func(t *testing.T) {
		// Proves the next subtest's refusal is about the bind address, not
		// a listener that is not there.
		r := kubectl(t, "exec", "-n", ns, pod, "--", "/listener", "probe", "--timeout", "2s", "127.0.0.1:15000")
		if r.Err != nil || strings.TrimSpace(r.Stdout) != pod {
			t.Fatalf("probe of 127.0.0.1:15000 inside the pod: %s", r)
		}
	})

	t.Run("127.0.0.1 listener is not reachable on the pod IP", func(t *testing.T) {
		got, err := answer("tcp", net.JoinHostPort(ip, "15000"))
		if err == nil {
			t.Fatalf("%s:15000 answered %q: a 127.0.0.1 listener must not be reachable on the pod IP", ip, got)
		}
		t.Logf("as expected: %v", err)
	})

	t.Run("127.0.0.1 listener is reachable through kubectl port-forward", func(t *testing.T) {
		local := portForward(t, ns, pod, 15000)
		var got string
		eventually(t, 10*time.Second, func() string {
			var err error
			got, err = answer("tcp", local)
			if err != nil || got != pod {
				return fmt.Sprintf("through port-forward %s: %q, %v", local, got, err)
			}
			return ""
		})
		t.Logf("port-forward %s -> pod 127.0.0.1:15000 answered %q: this is the hole a port-forward guard must close", local, got)
	})

	t.Run("pod reaches the API server through the kubernetes Service", func(t *testing.T) {
		r := kubectl(t, "exec", "-n", ns, pod, "--", "/listener", "probe", "--timeout", "3s", "10.96.0.1:443")
		if r.Err != nil {
			t.Fatalf("pod -> 10.96.0.1:443 (kube-proxy -> 10.245.0.1:6443): %s", r)
		}
	})
}

// TestImagePullsNeverLeaveTheMachine: a pod naming an image that was not
// imported (the e2e tests use registry.invalid/...) must fail its pull
// without any traffic leaving the machine: containerd sends every registry
// request to a closed loopback proxy, so it never even resolves a name.
// The image here names the harness's own node address, so the test sends
// nothing beyond the machine even if that guard were gone.
func TestImagePullsNeverLeaveTheMachine(t *testing.T) {
	ns := testNamespace(t)
	mustKubectl(t, "run", "unpullable", "-n", ns, "--image=10.245.0.1:5000/not-imported:1", "--restart=Never")
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=unpullable",
			"-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		if r.Err != nil {
			return r.String()
		}
		if !strings.Contains(r.Stdout, "proxyconnect tcp: dial tcp 127.0.0.1:9") {
			return "no pull failure through the loopback proxy yet; events:\n" + r.Stdout
		}
		return ""
	})
}

var forwardingRE = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> `)

// portForward starts kubectl port-forward to the pod's port on a free local
// port of 127.0.0.1 and returns that address; it is stopped by cleanup.
func portForward(t *testing.T, ns, pod string, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, kubectlBin(), "port-forward", "-n", ns, "pod/"+pod,
		"--address", "127.0.0.1", fmt.Sprintf(":%d", port))
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), kubeconfigEnv()...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start kubectl port-forward: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := forwardingRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- "127.0.0.1:" + m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(20 * time.Second):
		t.Fatalf("kubectl port-forward did not report a local port within 20s; stderr:\n%s", stderr.String())
		return ""
	}
}

// lockedBuffer is a bytes.Buffer that a running command may write while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
