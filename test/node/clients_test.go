//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/test/devcluster"
)

// TestAgentSamplesClients: a pod whose app listens on 127.0.0.1:15000, a
// sidecar the policy expects as a client (spec.ports[].clients) and a
// second container that is not, both holding a connection open, and a
// kubectl port-forward held open by the test. The agent's report lists the
// three clients (the port-forward as outside the pod's containers), and
// the rule engine finds the second container and the port-forward
// unexpected, not the sidecar.
func TestAgentSamplesClients(t *testing.T) {
	deployAgent(t)
	ns := testNamespace(t)
	policy := fmt.Sprintf(`apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: admin, namespace: %s}
spec:
  podSelector: {matchLabels: {app: clients}}
  ports: [{port: 15000, clients: [sidecar]}]
  portForward: {action: Audit}
`, ns)
	devcluster.MustKubectl(t, policy, "apply", "-f", "-")
	devcluster.MustKubectl(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: clients, namespace: %[1]s, labels: {app: clients}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: app, image: %[2]s, imagePullPolicy: Never, args: ["--listen", "tcp4://127.0.0.1:15000", "--keep-open"]}
  - {name: sidecar, image: %[2]s, imagePullPolicy: Never, command: [/listener, hold, "127.0.0.1:15000"]}
  - {name: debug, image: %[2]s, imagePullPolicy: Never, command: [/listener, hold, "127.0.0.1:15000"]}
`, ns, listenerImage), "apply", "-f", "-")
	if r := kubectl(t, "wait", "--for=condition=Ready", "pod/clients", "-n", ns, "--timeout=90s"); r.Err != nil {
		t.Fatalf("pod not Ready: %s", r)
	}
	addr := portForward(t, ns, "clients", 15000)
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial the port-forward %s: %v", addr, err)
	}
	defer conn.Close()
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "clients") {
		t.Fatalf("through the port-forward: %q, %v (want the listener's answer)", buf[:n], err)
	}

	var clients []v1alpha1.BindClient
	eventually(t, 60*time.Second, func() string {
		r := kubectl(t, "get", "nodebindreport", nodeName, "-o", "json")
		if r.Err != nil {
			return r.String()
		}
		var rep v1alpha1.NodeBindReport
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			return err.Error()
		}
		i := slices.IndexFunc(rep.Status.Pods, func(p v1alpha1.PodBindReport) bool { return p.Namespace == ns && p.Name == "clients" })
		if i < 0 {
			return "pod clients not in the report yet"
		}
		clients = rep.Status.Pods[i].Clients
		var got []string
		for _, c := range clients {
			who := "container " + c.Container
			if c.Outside {
				who = "outside"
			}
			got = append(got, fmt.Sprintf("%d %s", c.Port, who))
		}
		if want := []string{"15000 container debug", "15000 container sidecar", "15000 outside"}; !slices.Equal(got, want) {
			return fmt.Sprintf("clients %q, want %q", got, want)
		}
		return ""
	})
	t.Logf("clients in the report: %+v", clients)

	findings := rules.UnexpectedClients([]v1alpha1.LoopbackPort{{Port: 15000, Clients: []string{"sidecar"}}}, clients)
	var got []string
	for _, f := range findings {
		got = append(got, f.Message)
	}
	t.Logf("unexpected clients:\n%s", strings.Join(got, "\n"))
	if len(findings) != 2 || findings[0].Container != "debug" || !findings[1].Outside {
		t.Errorf("findings %+v, want the debug container and the port-forward", findings)
	}

	// What the user sees: the policy's status (the runtime controller),
	// its RuntimeVerified condition and a Warning Event naming the port.
	eventually(t, 60*time.Second, func() string {
		r := kubectl(t, "get", "loopbackservice", "admin", "-n", ns, "-o", "json")
		if r.Err != nil {
			return r.String()
		}
		var lbs v1alpha1.LoopbackService
		if err := json.Unmarshal([]byte(r.Stdout), &lbs); err != nil {
			return err.Error()
		}
		if lbs.Status.Runtime == nil {
			return "no status.runtime yet"
		}
		var got []string
		for _, c := range lbs.Status.Runtime.UnexpectedClients {
			who := "container " + c.Container
			if c.Outside {
				who = "outside"
			}
			got = append(got, fmt.Sprintf("%s %d %s %s", c.Pod, c.Port, who, c.Field))
		}
		if want := []string{"clients 15000 container debug spec.ports[0].clients", "clients 15000 outside spec.ports[0].clients"}; !slices.Equal(got, want) {
			return fmt.Sprintf("status.runtime.unexpectedClients %q, want %q", got, want)
		}
		i := slices.IndexFunc(lbs.Status.Conditions, func(c metav1.Condition) bool { return c.Type == "RuntimeVerified" })
		if i < 0 || lbs.Status.Conditions[i].Status != metav1.ConditionFalse || lbs.Status.Conditions[i].Reason != "UnexpectedClient" {
			return fmt.Sprintf("conditions %+v, want RuntimeVerified False UnexpectedClient", lbs.Status.Conditions)
		}
		t.Logf("RuntimeVerified: %s", lbs.Status.Conditions[i].Message)
		return ""
	})
	eventually(t, 30*time.Second, func() string {
		r := kubectl(t, "get", "events", "-n", ns, "--field-selector", "type=Warning,involvedObject.kind=LoopbackService,involvedObject.name=admin",
			"-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		if r.Err != nil {
			return r.String()
		}
		// The events API folds Events that differ only in their note, so
		// the two clients may show as one series: one is enough here.
		if !strings.Contains(r.Stdout, "UnexpectedClient: ") || !strings.Contains(r.Stdout, "15000") {
			return fmt.Sprintf("Warning Events %q, want an UnexpectedClient naming port 15000", r.Stdout)
		}
		t.Logf("Events:\n%s", r.Stdout)
		return ""
	})
}
