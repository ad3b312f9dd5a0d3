//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/test/devcluster"
)

// agentScanInterval is the agent's --scan-interval in this test, short so
// that a listener that binds after its pod started is found soon.
const agentScanInterval = "5s"

// hostListenPort is the hostNetwork listener's port, bound on the node
// address 10.245.0.1 only (never 0.0.0.0, which would open it on the
// machine's uplink too).
const hostListenPort = 15999

// TestAgentReportsListenersBeyondLoopback runs loopguard-agent as a real
// pod from its image through config/agent (config/overlays/agent-dev) and
// checks its NodeBindReport against listener pods under a policy that
// protects 15000 (TCP and UDP): 0.0.0.0, [::], the pod IP and a UDP bind
// are reported with their process and container; 127.0.0.1 and ::1 are
// not; a hostNetwork listener on the node address is reported as the
// node's. The agent's readiness (a report written under its own
// node-bound token) proves its RBAC and the node restriction admit it.
func TestAgentReportsListenersBeyondLoopback(t *testing.T) {
	deployAgent(t)
	ns := testNamespace(t)
	devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: admin, namespace: %[1]s}
spec:
  podSelector: {matchLabels: {app: listener}}
  ports: [{port: 15000}, {port: 15000, protocol: UDP}, {port: %[2]d}]
  hostNetwork: Audit
`, ns, hostListenPort), "apply", "-f", "-")

	type want struct {
		listens     []string
		hostNetwork bool
		addresses   []string // "PROTO address" reported; nil: checked and clean
	}
	pods := map[string]want{
		"wild4":    {listens: []string{"tcp4://0.0.0.0:15000"}, addresses: []string{"TCP 0.0.0.0"}},
		"wild6":    {listens: []string{"tcp6://[::]:15000"}, addresses: []string{"TCP ::"}},
		"podip":    {listens: []string{"tcp://$(POD_IP):15000"}, addresses: []string{"TCP $(POD_IP)"}},
		"udp":      {listens: []string{"udp4://0.0.0.0:15000"}, addresses: []string{"UDP 0.0.0.0"}},
		"loopback": {listens: []string{"tcp4://127.0.0.1:15000", "tcp6://[::1]:15000", "udp4://127.0.0.1:15000"}},
		"hostnet":  {listens: []string{fmt.Sprintf("tcp4://10.245.0.1:%d", hostListenPort)}, hostNetwork: true, addresses: []string{"TCP 10.245.0.1"}},
	}
	for name, w := range pods {
		var args []string
		for _, l := range w.listens {
			args = append(args, `"--listen"`, fmt.Sprintf("%q", l))
		}
		devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: listener}}
spec:
  hostNetwork: %t
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: %s
    imagePullPolicy: Never
    args: [%s]
    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
`, name, ns, w.hostNetwork, listenerImage, strings.Join(args, ", ")), "apply", "-f", "-")
	}
	for name := range pods {
		if r := kubectl(t, "wait", "--for=condition=Ready", "pod/"+name, "-n", ns, "--timeout=90s"); r.Err != nil {
			t.Fatalf("pod %s not Ready: %s\n%s", name, r, kubectl(t, "describe", "pod", name, "-n", ns).Stdout)
		}
	}
	ips := map[string]string{}
	for name := range pods {
		ips[name] = strings.TrimSpace(mustKubectl(t, "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.podIP}").Stdout)
	}

	var report v1alpha1.NodeBindReport
	eventually(t, 90*time.Second, func() string {
		r := kubectl(t, "get", "nodebindreport", nodeName, "-o", "json")
		if r.Err != nil {
			return r.String()
		}
		report = v1alpha1.NodeBindReport{}
		if err := json.Unmarshal([]byte(r.Stdout), &report); err != nil {
			return err.Error()
		}
		byName := map[string]v1alpha1.PodBindReport{}
		for _, p := range report.Status.Pods {
			if p.Namespace == ns {
				byName[p.Name] = p
			}
		}
		for name, w := range pods {
			p, ok := byName[name]
			if !ok {
				return fmt.Sprintf("pod %s not in the report yet", name)
			}
			if p.Unchecked != "" {
				return fmt.Sprintf("pod %s unchecked: %s", name, p.Unchecked)
			}
			var got []string
			for _, l := range p.Listeners {
				got = append(got, fmt.Sprintf("%s %s", l.Protocol, l.Address))
			}
			var expect []string
			for _, a := range w.addresses {
				expect = append(expect, strings.ReplaceAll(a, "$(POD_IP)", ips[name]))
			}
			if !slices.Equal(got, expect) {
				return fmt.Sprintf("pod %s: listeners beyond loopback %q, want %q", name, got, expect)
			}
			if p.HostNetwork != w.hostNetwork {
				return fmt.Sprintf("pod %s: hostNetwork %v, want %v", name, p.HostNetwork, w.hostNetwork)
			}
		}
		return ""
	})
	t.Logf("report: podsChecked %d, podsBeyondLoopback %d, scan %s", report.Status.PodsChecked, report.Status.PodsBeyondLoopback, report.Status.ScanDuration.Duration)

	// Each finding names the process and container that hold the socket:
	// the agent's two capabilities at work on a process of user 65532.
	for _, p := range report.Status.Pods {
		for _, l := range p.Listeners {
			if p.Namespace != ns {
				continue
			}
			if l.Port == 0 || l.Process != "listener" || l.Container != "server" || !strings.HasPrefix(l.ContainerID, "containerd://") || l.PID == 0 {
				t.Errorf("pod %s: listener %+v, want port, process \"listener\", container \"server\", its containerd ID and PID", p.Name, l)
			}
		}
	}
}

// TestAgentScansWhenAProtectedPodStarts runs the agent with a scan
// interval far longer than the test: a pod that starts listening on
// 0.0.0.0:15000 after the agent's first scan can only be reported by the
// scan that its start (or its policy's creation) triggers.
func TestAgentScansWhenAProtectedPodStarts(t *testing.T) {
	deployAgentWith(t, "1h")
	ns := testNamespace(t)
	devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: admin, namespace: %s}
spec:
  podSelector: {matchLabels: {app: late}}
  ports: [{port: 15000}]
`, ns), "apply", "-f", "-")
	devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: late, namespace: %s, labels: {app: late}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: %s
    imagePullPolicy: Never
    args: ["--listen", "tcp4://0.0.0.0:15000"]
`, ns, listenerImage), "apply", "-f", "-")
	eventually(t, 60*time.Second, func() string {
		r := kubectl(t, "get", "nodebindreport", nodeName, "-o",
			fmt.Sprintf(`jsonpath={.status.pods[?(@.namespace=="%s")].listeners[*].address}`, ns))
		if r.Err != nil {
			return r.String()
		}
		if got := strings.TrimSpace(r.Stdout); got != "0.0.0.0" {
			return fmt.Sprintf("listeners of pod late: %q, want 0.0.0.0", got)
		}
		return ""
	})
}

// Where hack/dev.sh up runs the node agent (hack/lib/dev/agent.sh).
const (
	agentNamespace = "loopguard-agent"
	agentDaemonSet = "loopguard-agent"
)

// deployAgent uses the agent that the dev cluster runs, with a short scan
// interval.
func deployAgent(t *testing.T) {
	t.Helper()
	deployAgentWith(t, agentScanInterval)
}

// deployAgentWith uses the agent that hack/dev.sh up runs on the node
// (config/overlays/agent-dev, not a second install): when its scan
// interval is not the one asked for, it sets it on the DaemonSet and puts
// the old one back at cleanup. It returns once an agent with that interval
// wrote the node's report (the agent's readiness is its first report).
func deployAgentWith(t *testing.T, scanInterval string) {
	t.Helper()
	r := kubectl(t, "-n", agentNamespace, "get", "daemonset", agentDaemonSet, "-o", "jsonpath={.spec.template.spec.containers[0].args}")
	if r.Err != nil {
		t.Fatalf("the dev cluster runs no node agent (hack/dev.sh up does, unless DEV_AGENT=0): %s", r)
	}
	var args []string
	if err := json.Unmarshal([]byte(r.Stdout), &args); err != nil {
		t.Fatalf("agent args %q: %v", r.Stdout, err)
	}
	i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--scan-interval=") })
	if i < 0 {
		t.Fatalf("the agent has no --scan-interval flag in %q; update the test", args)
	}
	setInterval := func(from, to string) result {
		patch := fmt.Sprintf(`[{"op":"test","path":"/spec/template/spec/containers/0/args/%[1]d","value":%[2]q},`+
			`{"op":"replace","path":"/spec/template/spec/containers/0/args/%[1]d","value":%[3]q}]`, i, "--scan-interval="+from, "--scan-interval="+to)
		return kubectl(t, "-n", agentNamespace, "patch", "daemonset", agentDaemonSet, "--type=json", "-p", patch)
	}
	if current := strings.TrimPrefix(args[i], "--scan-interval="); current != scanInterval {
		if r := setInterval(current, scanInterval); r.Err != nil {
			t.Fatalf("set the agent's scan interval to %s: %s", scanInterval, r)
		}
		t.Cleanup(func() {
			if r := setInterval(scanInterval, current); r.Err != nil {
				t.Errorf("put the agent's scan interval back to %s: %s", current, r)
				return
			}
			kubectl(t, "-n", agentNamespace, "rollout", "status", "daemonset/"+agentDaemonSet, "--timeout=120s")
		})
	}
	if r := kubectl(t, "-n", agentNamespace, "rollout", "status", "daemonset/"+agentDaemonSet, "--timeout=120s"); r.Err != nil {
		t.Fatalf("agent not ready: %s\n%s\n%s", r,
			kubectl(t, "-n", agentNamespace, "describe", "pods").Stdout,
			kubectl(t, "-n", agentNamespace, "logs", "daemonset/"+agentDaemonSet, "--tail=15").String())
	}
	want, err := time.ParseDuration(scanInterval)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() string {
		r := kubectl(t, "get", "nodebindreport", nodeName, "-o", "jsonpath={.status.scanInterval}")
		if r.Err != nil {
			return r.String()
		}
		got, err := time.ParseDuration(strings.TrimSpace(r.Stdout))
		if err != nil || got != want {
			return fmt.Sprintf("report's scanInterval %q, want %s (an agent with the new interval has not written yet)", r.Stdout, want)
		}
		return ""
	})
}
