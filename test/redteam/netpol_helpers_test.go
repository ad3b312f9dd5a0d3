//go:build e2e

package redteam

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/test/devcluster"
)

// getJSON runs kubectl as the admin and decodes its output.
func getJSON(t *testing.T, into any, args ...string) {
	t.Helper()
	r := admin(t, "", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(r.Stdout), into); err != nil {
		t.Fatalf("failed to decode kubectl %v: %v", args, err)
	}
}

// openProtectedPorts judges every NetworkPolicy of ns against every policy
// applying there with internal/netpol.Conflicts, the evaluation conflict
// detection uses, and returns what re-opens a protected port of a pod.
func openProtectedPorts(t *testing.T, ns string) []string {
	t.Helper()
	var lbss v1alpha1.LoopbackServiceList
	getJSON(t, &lbss, "get", "loopbackservices", "-n", ns)
	var clbss v1alpha1.ClusterLoopbackServiceList
	getJSON(t, &clbss, "get", "clusterloopbackservices")
	var n corev1.Namespace
	getJSON(t, &n, "get", "namespace", ns)
	var policies []*rules.Policy
	for i := range lbss.Items {
		p, err := rules.Compile(&lbss.Items[i])
		if err != nil {
			t.Fatal(err)
		}
		policies = append(policies, p)
	}
	for i := range clbss.Items {
		p, err := rules.CompileCluster(&clbss.Items[i])
		if err == nil && p.AppliesToNamespace(ns, labelsOf(n.Labels)) {
			policies = append(policies, p)
		}
	}
	var pods corev1.PodList
	getJSON(t, &pods, "get", "pods", "-n", ns)
	var ps []*podview.Pod
	for i := range pods.Items {
		ps = append(ps, podview.Of(&pods.Items[i]))
	}
	var nps networkingv1.NetworkPolicyList
	getJSON(t, &nps, "get", "networkpolicies", "-n", ns)
	var out []string
	for i := range nps.Items {
		for _, p := range policies {
			for _, c := range netpol.Conflicts(&nps.Items[i], p, ps) {
				out = append(out, fmt.Sprintf("%s re-opens %s of %s", c, c.Port, p.Ref))
			}
		}
	}
	return out
}

func labelsOf(m map[string]string) labels.Set { return labels.Set(m) }

// waitCondition waits until the policy's NetworkPolicyEffective condition,
// for its current generation, has the status and names every string.
func waitCondition(t *testing.T, ns, resource, name string, status metav1.ConditionStatus, names ...string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	args := []string{"get", resource, name}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	devcluster.Eventually(t, time.Minute, func() string {
		var obj struct {
			Metadata struct {
				Generation int64 `json:"generation"`
			} `json:"metadata"`
			Status struct {
				ObservedGeneration int64              `json:"observedGeneration"`
				Conditions         []metav1.Condition `json:"conditions"`
			} `json:"status"`
		}
		r := tryAdmin(t, "", append(args, "-o", "json")...)
		if r.Err != nil || json.Unmarshal([]byte(r.Stdout), &obj) != nil {
			return "cannot read " + resource + " " + name + ": " + r.String()
		}
		if obj.Status.ObservedGeneration != obj.Metadata.Generation {
			return "status not current"
		}
		for _, c := range obj.Status.Conditions {
			if c.Type != "NetworkPolicyEffective" {
				continue
			}
			if c.Status != status {
				return fmt.Sprintf("%s %s: NetworkPolicyEffective=%s (%s), want %s", resource, name, c.Status, c.Message, status)
			}
			for _, n := range names {
				if !strings.Contains(c.Message, n) {
					return fmt.Sprintf("%s %s: NetworkPolicyEffective message %q does not name %s", resource, name, c.Message, n)
				}
			}
			got = c
			return ""
		}
		return "no NetworkPolicyEffective condition"
	})
	return got
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// loopguardCLI builds cmd/loopguard once.
func loopguardCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loopguard-cli")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "loopguard")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/loopguard")
		cmd.Dir = devcluster.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build ./cmd/loopguard: %v: %s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// auditConflicts runs `loopguard audit -n ns -o json` as the admin and
// returns the NetworkPolicies it reports as conflicts.
func auditConflicts(t *testing.T, ns string) []string {
	t.Helper()
	r := devcluster.Run(time.Minute, nil, "", loopguardCLI(t), "audit", "--kubeconfig", devcluster.Kubeconfig(), "-n", ns, "-o", "json")
	var rep struct {
		Conflicts []struct {
			NetworkPolicy string `json:"networkPolicy"`
			Ports         string `json:"ports"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("loopguard audit: %v: %s", err, r)
	}
	var out []string
	for _, c := range rep.Conflicts {
		out = append(out, c.NetworkPolicy+" "+c.Ports)
	}
	return out
}
