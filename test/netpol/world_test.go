//go:build node

// Package netpol proves with real traffic between real pods on the dev
// node (hack/dev.sh up as root, with its NetworkPolicy enforcer, see
// docs/testing.md) that the NetworkPolicies loopguard manages block what
// they must and nothing else, and that loopguard's conflict detector
// (internal/netpol.Conflicts, surfaced as the NetworkPolicyEffective
// condition) agrees with the data plane.
//
// Each test builds a small world — two namespaces with a server pod that
// listens on protected and unprotected ports, and a client pod each — and
// compares truth tables: the expected one computed by a NetworkPolicy
// model (model_test.go) from the objects in the cluster, the observed one
// from `listener probe` run in every pod (kubectl exec). A failure prints
// both side by side.
//
// Network rule: probes run inside the pods and go to pod IPs in the
// harness's range 10.244.0.0/24 only.
package netpol

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

const (
	listenerImage = "loopguard-listener:dev"
	podCIDR       = "10.244.0.0/24"
	// runLabel marks the namespaces of one world; ClusterLoopbackServices
	// of the tests select it, so they never reach another test's pods.
	runLabel = "netpol-test.loopguard.io/run"
)

// port is one port a server listens on.
type port struct {
	Proto corev1.Protocol
	Num   int32
}

func (p port) String() string { return fmt.Sprintf("%s/%d", strings.ToLower(string(p.Proto)), p.Num) }

// serverPorts are what every server pod listens on (on 0.0.0.0, as a
// misconfigured workload would): the tests protect tcp/9090, the range
// tcp/9100-9102 (every port of it: a rule admitting only 9101 must show
// in traffic) and udp/5454; the others stay open. 9103 sits just past the
// range and 5353 shares udp with a protected port.
var serverPorts = []port{
	{corev1.ProtocolTCP, 8080}, {corev1.ProtocolTCP, 9090}, {corev1.ProtocolTCP, 9100},
	{corev1.ProtocolTCP, 9101}, {corev1.ProtocolTCP, 9102}, {corev1.ProtocolTCP, 9103},
	{corev1.ProtocolUDP, 5353}, {corev1.ProtocolUDP, 5454},
}

// namedPorts are the server's declared containerPorts, for namedPort rules.
var namedPorts = map[string]port{
	"web":   {corev1.ProtocolTCP, 8080},
	"admin": {corev1.ProtocolTCP, 9090},
	"dns":   {corev1.ProtocolUDP, 5353},
}

// podRef names a pod of the world.
type podRef struct{ NS, Name string }

func (p podRef) String() string { return p.NS + "/" + p.Name }

// world is two namespaces, a and b, each with a server pod "srv"
// (app=srv, serving serverPorts) and a client pod "cli" (app=cli).
type world struct {
	t       *testing.T
	run     string
	a, b    string
	pods    []podRef // every pod: the probe clients
	servers []podRef // the probe targets
	// focus, when set, narrows the probes to this server (a test that
	// changes only its policies need not probe the other).
	focus *podRef
	ips   map[podRef]string
}

// newWorld creates the namespaces and pods and waits until every pod runs
// with an IP in the harness's range.
func newWorld(t *testing.T, name string) *world { t.Helper(); return newWorldGrace(t, name, 0) }

// newWorldGrace is newWorld with servers that linger for grace seconds
// after deletion, still serving (see serverPod).
func newWorldGrace(t *testing.T, name string, grace int) *world {
	t.Helper()
	requireNode(t)
	w := &world{t: t, run: fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1_000_000), ips: map[podRef]string{}}
	w.a = devcluster.Namespace(t, "np-"+name+"-a", runLabel+"="+w.run, "netpol-test.loopguard.io/role=a")
	w.b = devcluster.Namespace(t, "np-"+name+"-b", runLabel+"="+w.run, "netpol-test.loopguard.io/role=b")
	var manifests []string
	for _, ns := range []string{w.a, w.b} {
		manifests = append(manifests, serverPod(ns, "srv", grace), clientPod(ns, "cli"))
		w.servers = append(w.servers, podRef{ns, "srv"})
		w.pods = append(w.pods, podRef{ns, "cli"}, podRef{ns, "srv"})
	}
	devcluster.MustKubectl(t, strings.Join(manifests, "\n---\n"), "apply", "-f", "-")
	for _, p := range w.pods {
		w.ips[p] = waitPodIP(t, p)
	}
	return w
}

// requireNode fails the test unless the dev cluster has a Ready node and
// the enforcer runs: these tests mean nothing without both.
func requireNode(t *testing.T) {
	t.Helper()
	if !devcluster.FileExists(devcluster.Kubeconfig()) {
		t.Fatalf("no dev cluster (%s missing): run DEV_NODE=require hack/dev.sh up as root first", devcluster.Kubeconfig())
	}
	r := devcluster.Kubectl(t, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{end}`)
	if r.Err != nil || !strings.Contains(r.Stdout, "True") {
		t.Fatalf("the dev cluster has no Ready node (DEV_NODE=require hack/dev.sh up as root): %s", r)
	}
	pid := devcluster.Run(5*time.Second, nil, "", "cat", devcluster.DevDir()+"/run/netpol-enforcer.pid")
	if pid.Err != nil || !devcluster.FileExists("/proc/"+strings.TrimSpace(pid.Stdout)) {
		t.Fatalf("the NetworkPolicy enforcer does not run (hack/dev.sh up starts it with the node): %s", pid)
	}
}

// serverPod is a listener on every serverPort, declaring namedPorts, with
// a grace period and a preStop sleep of grace-1 seconds when grace > 0 (so
// a deleted pod lingers, still serving).
func serverPod(ns, name string, grace int) string {
	var args, decl []string
	for _, p := range serverPorts {
		args = append(args, fmt.Sprintf("--listen=%s://0.0.0.0:%d", strings.ToLower(string(p.Proto)), p.Num))
	}
	for _, n := range []string{"web", "admin", "dns"} {
		p := namedPorts[n]
		decl = append(decl, fmt.Sprintf(`{"name": %q, "containerPort": %d, "protocol": %q}`, n, p.Num, p.Proto))
	}
	lifecycle := ""
	if grace > 0 {
		lifecycle = fmt.Sprintf(`, "lifecycle": {"preStop": {"sleep": {"seconds": %d}}}`, grace-1)
	} else {
		grace = 1
	}
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": %q, "namespace": %q, "labels": {"app": "srv"}},
 "spec": {"terminationGracePeriodSeconds": %d, "enableServiceLinks": false, "automountServiceAccountToken": false,
  "containers": [{"name": "listener", "image": %q, "imagePullPolicy": "Never", "args": %s, "ports": [%s]%s}]}}`,
		name, ns, grace, listenerImage, mustJSON(args), strings.Join(decl, ", "), lifecycle)
}

// clientPod is a listener too (the image has no shell to idle in); it only
// runs probes.
func clientPod(ns, name string) string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": %q, "namespace": %q, "labels": {"app": "cli"}},
 "spec": {"terminationGracePeriodSeconds": 1, "enableServiceLinks": false, "automountServiceAccountToken": false,
  "containers": [{"name": "listener", "image": %q, "imagePullPolicy": "Never", "args": ["--listen=tcp://127.0.0.1:8081"]}]}}`,
		name, ns, listenerImage)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// waitPodIP waits until the pod runs and returns its IP, failing the test
// unless it is in the harness's pod range.
func waitPodIP(t *testing.T, p podRef) string {
	t.Helper()
	var ip string
	devcluster.Eventually(t, 90*time.Second, func() string {
		r := devcluster.Kubectl(t, "", "get", "pod", p.Name, "-n", p.NS, "-o", "jsonpath={.status.phase} {.status.podIP}")
		f := strings.Fields(r.Stdout)
		if len(f) != 2 || f[0] != "Running" {
			return fmt.Sprintf("pod %s not running with an IP: %s", p, r)
		}
		ip = f[1]
		return ""
	})
	_, cidr, _ := net.ParseCIDR(podCIDR)
	if parsed := net.ParseIP(ip); parsed == nil || !cidr.Contains(parsed) {
		t.Fatalf("pod %s has IP %q outside the harness's range %s", p, ip, podCIDR)
	}
	return ip
}

// apply applies a manifest and deletes it when the test ends.
func apply(t *testing.T, manifest string) {
	t.Helper()
	devcluster.MustKubectl(t, manifest, "apply", "-f", "-")
	t.Cleanup(func() { devcluster.Kubectl(t, manifest, "delete", "--ignore-not-found", "--wait=false", "-f", "-") })
}

// parallel runs f(i) for i in [0, n) with at most limit at once.
func parallel(n, limit int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, limit)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}
