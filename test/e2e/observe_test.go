//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// devMetricsURL is the dev manager's metrics endpoint: 8443, plus the dev
// cluster's DEV_PORT_OFFSET.
func devMetricsURL() string {
	off, _ := strconv.Atoi(os.Getenv("DEV_PORT_OFFSET"))
	return fmt.Sprintf("https://127.0.0.1:%d/metrics", 8443+off)
}

// observedPod violates the Warn policy (it declares the protected port)
// and runs (its status says so) on a Node object without a kubelet whose
// NodeBindReport was never written by an agent: the runtime view counts
// a stale node for the policy.
const observedPod = `apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: %[1]s, labels: {app: cart}}
spec:
  nodeName: %[2]s
  containers:
  - name: envoy
    image: registry.invalid/envoy:1
    ports: [{containerPort: 15000}]
`

// TestObservabilityMetricsExported checks every metric that the dashboard
// (config/grafana) and the alerts (config/prometheus) query, as
// hack/observe/metric-names.txt lists them for the manager, is on the
// running manager's /metrics once a policy has judged something: a
// warned admission, an admitted violation on a node without an agent
// report, and a port-forward request.
func TestObservabilityMetricsExported(t *testing.T) {
	want := managerMetricNames(t)
	ns := testNamespace(t)
	node := "observe-" + ns
	// No kubelet: unschedulable and tainted, so that neither the scheduler
	// nor a DaemonSet (the agent's) puts a pod there.
	mustKubectl(t, "apiVersion: v1\nkind: Node\nmetadata: {name: "+node+"}\nspec:\n  unschedulable: true\n  taints: [{key: loopguard.io/observe-test, effect: NoSchedule}]\n", "apply", "-f", "-")
	mustKubectl(t, "apiVersion: loopguard.io/v1alpha1\nkind: NodeBindReport\nmetadata: {name: "+node+"}\n", "apply", "-f", "-")
	t.Cleanup(func() {
		kubectl(t, "", "delete", "nodebindreport", node, "--ignore-not-found")
		kubectl(t, "", "delete", "node", node, "--ignore-not-found")
	})
	// The pod exists before the policy: an existing violation.
	mustKubectl(t, fmt.Sprintf(observedPod, ns, node), "apply", "-f", "-")
	mustKubectl(t, "", "patch", "pod", "cart", "-n", ns, "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Running"}}`)
	mustKubectl(t, fmt.Sprintf(guardYAML, ns, "Warn"), "apply", "-f", "-")
	waitEnforced(t, ns)
	// A port-forward reaches the webhook (CONNECT pods/portforward)
	// whatever happens after it: there is no kubelet here.
	kubectl(t, "", "create", "--raw", "/api/v1/namespaces/"+ns+"/pods/cart/portforward?ports=15000", "-f", "/dev/null")
	get := metricsGetter(t, ns)
	eventually(t, 60*time.Second, func() string {
		code, body := get(readerToken)
		if code != http.StatusOK {
			return fmt.Sprintf("GET /metrics: %d", code)
		}
		have := exportedSampleNames(body)
		var missing []string
		for _, n := range want {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return "the manager does not export " + strings.Join(missing, ", ")
		}
		return ""
	})
}

// managerMetricNames reads the manager's names from metric-names.txt.
func managerMetricNames(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../hack/observe/metric-names.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	for s := bufio.NewScanner(f); s.Scan(); {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[1] == "manager" {
			out = append(out, fields[0])
		}
	}
	if len(out) == 0 {
		t.Fatal("metric-names.txt lists no manager metric")
	}
	sort.Strings(out)
	return out
}

// exportedSampleNames returns the sample names of a text exposition
// (histograms as NAME_bucket, NAME_sum, NAME_count).
func exportedSampleNames(body string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}
