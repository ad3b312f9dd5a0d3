//go:build node

package node

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/test/devcluster"
)

// TestRuntimeFindingsReachTheUser runs the agent on the real node and
// checks that a listener pod under a policy, listening on 0.0.0.0:15000,
// reaches the user through every channel the controller offers: the
// policy's status.runtime, Compliant=False with ListeningBeyondLoopback, a
// Warning Event naming the pod and address, the metric, and loopguard
// audit. The same listener on 127.0.0.1 is checked and not reported. When
// the exposed pod goes, the policy is compliant again.
func TestRuntimeFindingsReachTheUser(t *testing.T) {
	deployAgent(t)
	ns := testNamespace(t)
	devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: admin, namespace: %s}
spec:
  podSelector: {matchLabels: {app: listener}}
  ports: [{port: 15000}]
`, ns), "apply", "-f", "-")
	for name, listen := range map[string]string{"exposed": "tcp4://0.0.0.0:15000", "private": "tcp4://127.0.0.1:15000"} {
		devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: listener}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: %s
    imagePullPolicy: Never
    args: ["--listen", %q]
`, name, ns, listenerImage, listen), "apply", "-f", "-")
	}
	for _, name := range []string{"exposed", "private"} {
		if r := kubectl(t, "wait", "--for=condition=Ready", "pod/"+name, "-n", ns, "--timeout=90s"); r.Err != nil {
			t.Fatalf("pod %s not Ready: %s", name, r)
		}
	}

	// Status and condition, within a few scan intervals (5s here).
	policy := func() (*v1alpha1.LoopbackService, string) {
		r := kubectl(t, "get", "lbs", "admin", "-n", ns, "-o", "json")
		if r.Err != nil {
			return nil, r.String()
		}
		var lbs v1alpha1.LoopbackService
		if err := json.Unmarshal([]byte(r.Stdout), &lbs); err != nil {
			return nil, err.Error()
		}
		return &lbs, ""
	}
	ready := time.Now()
	eventually(t, 90*time.Second, func() string {
		lbs, msg := policy()
		if lbs == nil {
			return msg
		}
		rt := lbs.Status.Runtime
		if rt == nil || rt.PodsChecked != 2 || rt.PodsBeyondLoopback != 1 || len(rt.Listeners) != 1 {
			return fmt.Sprintf("status.runtime: %+v", rt)
		}
		l := rt.Listeners[0]
		if l.Pod != "exposed" || l.Address != "0.0.0.0" || l.Port != 15000 || l.Process != "listener" || l.Container != "server" || l.Node != nodeName {
			return fmt.Sprintf("listener: %+v", l)
		}
		c := meta.FindStatusCondition(lbs.Status.Conditions, v1alpha1.ConditionCompliant)
		if c == nil || c.Status != "False" || c.Reason != v1alpha1.ReasonListeningBeyondLoopback {
			return fmt.Sprintf("Compliant: %+v", c)
		}
		return ""
	})

	t.Logf("status.runtime and Compliant=False %s after the pods were Ready (scan interval %s)", time.Since(ready).Round(100*time.Millisecond), agentScanInterval)

	// The Event.
	eventually(t, 30*time.Second, func() string {
		var list eventsv1.EventList
		r := kubectl(t, "get", "events.events.k8s.io", "-n", ns, "-o", "json")
		if r.Err != nil {
			return r.String()
		}
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			return err.Error()
		}
		want := fmt.Sprintf("pod %s/exposed listens on 0.0.0.0:15000/TCP beyond loopback (container server, process listener, node %s)", ns, nodeName)
		for _, e := range list.Items {
			if e.Reason == v1alpha1.ReasonListeningBeyondLoopback && e.Type == "Warning" && strings.Contains(e.Note, want) &&
				e.Related != nil && e.Related.Name == "exposed" {
				return ""
			}
		}
		return "no ListeningBeyondLoopback Event with " + want
	})

	// The metric, read as Prometheus would (a token bound to metrics-reader).
	want := fmt.Sprintf(`loopguard_runtime_pods_beyond_loopback{policy="admin",policy_kind="LoopbackService",policy_namespace=%q} 1`, ns)
	eventually(t, 30*time.Second, func() string {
		body := managerMetrics(t, ns)
		if !strings.Contains(body, want) {
			return "metrics lack " + want
		}
		return ""
	})

	// loopguard audit, next to the declared findings (none here).
	r := run(time.Minute, kubeconfigEnv(), "bin/loopguard", "audit", "-n", ns)
	var exit *exec.ExitError
	if !errors.As(r.Err, &exit) || exit.ExitCode() != 1 || !strings.Contains(r.Stdout, ns+"/exposed") || !strings.Contains(r.Stdout, "0.0.0.0:15000/TCP") || strings.Contains(r.Stdout, ns+"/private") {
		t.Errorf("loopguard audit: want exit 1 and exposed's listener only, got %s", r)
	}

	// The fix: the exposed pod goes; the policy is compliant again.
	mustKubectl(t, "delete", "pod", "exposed", "-n", ns, "--wait=true")
	gone := time.Now()
	eventually(t, 90*time.Second, func() string {
		lbs, msg := policy()
		if lbs == nil {
			return msg
		}
		c := meta.FindStatusCondition(lbs.Status.Conditions, v1alpha1.ConditionCompliant)
		if rt := lbs.Status.Runtime; rt == nil || len(rt.Listeners) != 0 || c == nil || c.Status != "True" {
			return fmt.Sprintf("status.runtime %+v, Compliant %+v", rt, c)
		}
		return ""
	})
	t.Logf("Compliant=True again %s after the pod was deleted", time.Since(gone).Round(100*time.Millisecond))
}

// managerMetrics returns the dev manager's /metrics, read with a token
// bound to the metrics-reader ClusterRole.
func managerMetrics(t *testing.T, ns string) string {
	t.Helper()
	mustKubectl(t, "apply", "-f", "config/rbac/metrics_auth_role.yaml")
	if r := kubectl(t, "get", "serviceaccount", "prometheus", "-n", ns); r.Err != nil {
		mustKubectl(t, "create", "serviceaccount", "prometheus", "-n", ns)
		mustKubectl(t, "create", "clusterrolebinding", ns+"-metrics", "--clusterrole=metrics-reader", "--serviceaccount="+ns+":prometheus")
		t.Cleanup(func() { kubectl(t, "delete", "clusterrolebinding", ns+"-metrics") })
	}
	token := strings.TrimSpace(mustKubectl(t, "create", "token", "prometheus", "-n", ns).Stdout)
	// The dev serving certificate is self-signed by the manager.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}}
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:8443/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
