//go:build node

package netpol

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestMatrix: loopguard's managed NetworkPolicy, alone and beside other
// policies, against real traffic. Each case checks the model's table
// against the observed one; where loopguard's declared intent must hold
// it checks the model's table against the intent too.
func TestMatrix(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := newWorld(t, "matrix")
	srvA, srvB := podRef{w.a, "srv"}, podRef{w.b, "srv"}
	t.Cleanup(func() { t.Logf("TestMatrix took %s", time.Since(start).Round(time.Second)) })

	cases := []struct {
		name string
		// objects are applied before the probes (and deleted after).
		objects func() []string
		// ready waits for loopguard to have acted and checks its status.
		ready func(t *testing.T)
		// intent, when set, is the table loopguard's policy declares.
		intent func() table
	}{
		{
			name:    "no policy: everything open",
			objects: func() []string { return nil },
			ready:   func(t *testing.T) {},
			intent:  func() table { return w.intent() },
		},
		{
			name:    "managed policy alone",
			objects: func() []string { return []string{lbs(w.a, "guard", "Managed")} },
			ready: func(t *testing.T) {
				waitNetworkPolicy(t, w.a, "loopguard-guard")
				waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionTrue)
			},
			intent: func() table { return w.intent(srvA) },
		},
		{
			name: "managed policy with an unrelated policy (web from namespace b only)",
			objects: func() []string {
				return []string{lbs(w.a, "guard", "Managed"), networkPolicy(w.a, "web-from-b", `{"podSelector": {"matchLabels": {"app": "srv"}},
 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"netpol-test.loopguard.io/role": "b"}}}], "ports": [{"port": 8080}]}]}`)}
			},
			ready: func(t *testing.T) {
				waitNetworkPolicy(t, w.a, "loopguard-guard")
				waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionTrue)
			},
			intent: func() table { return w.intent(srvA) },
		},
		{
			name: "managed policy with a conflicting allow-all",
			objects: func() []string {
				return []string{lbs(w.a, "guard", "Managed"), networkPolicy(w.a, "allow-all", `{"podSelector": {}, "ingress": [{}]}`)}
			},
			ready: func(t *testing.T) {
				waitNetworkPolicy(t, w.a, "loopguard-guard")
				waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionFalse, "allow-all")
			},
			intent: func() table { return w.intent() }, // nothing stays closed
		},
		{
			name: "managed policy with a conflicting tcp port range",
			objects: func() []string {
				return []string{lbs(w.a, "guard", "Managed"), networkPolicy(w.a, "tcp-9000-9200", `{"podSelector": {"matchLabels": {"app": "srv"}},
 "ingress": [{"ports": [{"protocol": "TCP", "port": 9000, "endPort": 9200}]}]}`)}
			},
			ready: func(t *testing.T) {
				waitNetworkPolicy(t, w.a, "loopguard-guard")
				waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionFalse, "tcp-9000-9200")
			},
		},
		{
			name:    "networkPolicy: Disabled",
			objects: func() []string { return []string{lbs(w.a, "guard", "Disabled")} },
			ready: func(t *testing.T) {
				waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionFalse, "")
				if r := devcluster.Kubectl(t, "", "get", "networkpolicy", "loopguard-guard", "-n", w.a); r.Err == nil {
					t.Fatalf("networkPolicy: Disabled, yet loopguard-guard exists")
				}
			},
			intent: func() table { return w.intent() },
		},
		{
			name:    "ClusterLoopbackService across namespaces",
			objects: func() []string { return []string{clbs(w, "netpol-"+w.run, "Managed")} },
			ready: func(t *testing.T) {
				waitNetworkPolicy(t, w.a, "loopguard-cluster-netpol-"+w.run)
				waitNetworkPolicy(t, w.b, "loopguard-cluster-netpol-"+w.run)
				waitEffective(t, "clusterloopbackservice", "", "netpol-"+w.run, metav1.ConditionTrue)
			},
			intent: func() table { return w.intent(srvA, srvB) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.t = t
			w.waitNoPolicies()
			for _, o := range tc.objects() {
				apply(t, o)
			}
			tc.ready(t)
			want := w.expected(nil)
			if tc.intent != nil {
				w.sameTable(tc.name, want, tc.intent())
			}
			w.expectTable(tc.name, want)
		})
	}

	t.Run("policy change while traffic flows", func(t *testing.T) {
		w.t = t
		w.waitNoPolicies()
		apply(t, lbs(w.a, "guard", "Managed"))
		waitNetworkPolicy(t, w.a, "loopguard-guard")
		w.expectTable("before the change", w.intent(srvA))

		// A steady flow of new connections to an open port of the guarded
		// server for the whole change: it must never be blocked. A longer
		// timeout than the matrix's: the verdict on a flow's first packet
		// comes from a userspace process that a loaded machine may not
		// schedule within 1s, while a policy drop is final (every SYN
		// retransmit is dropped too).
		stop := make(chan struct{})
		var probes, blocked atomic.Int64
		var blockedMsgs sync.Map
		var wg sync.WaitGroup
		for _, from := range []podRef{{w.a, "cli"}, {w.b, "cli"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					open, msg, err := w.probeWith(cell{from, srvA, port{"TCP", 8080}}, "3s")
					if err != nil {
						continue
					}
					probes.Add(1)
					if !open {
						blockedMsgs.Store(fmt.Sprintf("%s %s: %s", time.Now().Format("15:04:05.000"), from, strings.TrimSpace(msg)), true)
						blocked.Add(1)
					}
				}
			}()
		}

		// Open 9090 (drop it from the protected ports), then close it again.
		watched := cell{podRef{w.b, "cli"}, srvA, port{"TCP", 9090}}
		devcluster.MustKubectl(t, "", "patch", "loopbackservice", "guard", "-n", w.a, "--type=json",
			"-p", `[{"op": "replace", "path": "/spec/ports", "value": [{"port": 9100, "endPort": 9102}, {"port": 5454, "protocol": "UDP"}]}]`)
		t.Logf("change 1 (open tcp/9090): %s from the patch until a new connection got through", w.waitCell(watched, true))
		openTable := w.intent(srvA)
		for c := range openTable {
			if c.To == srvA && c.Port == (port{"TCP", 9090}) {
				openTable[c] = true
			}
		}
		w.expectTable("after dropping tcp/9090", openTable)
		devcluster.MustKubectl(t, "", "patch", "loopbackservice", "guard", "-n", w.a, "--type=json",
			"-p", fmt.Sprintf(`[{"op": "replace", "path": "/spec/ports", "value": %s}]`, protectedPorts))
		t.Logf("change 2 (close tcp/9090): %s from the patch until a new connection was blocked", w.waitCell(watched, false))
		w.expectTable("after protecting tcp/9090 again", w.intent(srvA))

		close(stop)
		wg.Wait()
		t.Logf("steady flow to tcp/8080 during the changes: %d probes, %d blocked", probes.Load(), blocked.Load())
		if probes.Load() == 0 {
			t.Fatalf("no probe of the steady flow completed")
		}
		blockedMsgs.Range(func(k, _ any) bool { t.Logf("blocked: %s", k); return true })
		if blocked.Load() > 0 {
			t.Fatalf("%d of %d new connections to the open port tcp/8080 were blocked during the policy change", blocked.Load(), probes.Load())
		}
	})
}

// waitNoPolicies waits until the world's namespaces hold no
// NetworkPolicy (the previous case's are deleted asynchronously).
func (w *world) waitNoPolicies() {
	w.t.Helper()
	devcluster.Eventually(w.t, settleBound, func() string {
		r := devcluster.Kubectl(w.t, "", "get", "networkpolicies", "-n", w.a, "-o", "name")
		r2 := devcluster.Kubectl(w.t, "", "get", "networkpolicies", "-n", w.b, "-o", "name")
		if left := strings.TrimSpace(r.Stdout + r2.Stdout); left != "" || r.Err != nil || r2.Err != nil {
			return "NetworkPolicies left from the previous case: " + left
		}
		return ""
	})
}

// waitCell probes one cell back to back until it shows want and returns
// how long that took (resolution: one kubectl exec, some 100-300ms).
func (w *world) waitCell(c cell, want bool) time.Duration {
	w.t.Helper()
	start := time.Now()
	for time.Since(start) < settleBound {
		if open, err := w.probe(c); err == nil && open == want {
			return time.Since(start).Round(time.Millisecond)
		}
	}
	w.t.Fatalf("%s -> %s %s still not %s after %s", c.From, c.To, c.Port, verdict(want), settleBound)
	return 0
}
