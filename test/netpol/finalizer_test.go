//go:build node

package netpol

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

// lingerSeconds is how long a deleted server keeps serving (preStop
// sleep): the window in which a NetworkPolicy deleted before its pods
// would leave the protected ports open (CVE-2024-7598).
const lingerSeconds = 25

// TestNamespaceDeletionKeepsPortsBlocked deletes the namespace of a
// guarded server that keeps serving for a while after deletion and probes
// it from the other namespace until it is gone: the open port answers
// during the whole window (the pod is alive) and the protected port never
// does (the managed NetworkPolicy, deleted early, outlives the pod, held
// by its loopguard.io/pods-gone finalizer).
func TestNamespaceDeletionKeepsPortsBlocked(t *testing.T) {
	t.Parallel()
	w := newWorldGrace(t, "nsdelete", lingerSeconds)
	srvA, cliB := podRef{w.a, "srv"}, podRef{w.b, "cli"}
	apply(t, lbs(w.a, "guard", "Managed"))
	waitNetworkPolicy(t, w.a, "loopguard-guard")
	waitEffective(t, "loopbackservice", w.a, "guard", metav1.ConditionTrue)
	w.expectTable("before the namespace deletion", w.intent(srvA))

	deleted := time.Now()
	devcluster.MustKubectl(t, "", "delete", "namespace", w.a, "--wait=false")
	// The namespace controller of v1.37 deletes a namespace's pods before
	// its other objects (KEP-5080, ordered namespace deletion), which hides
	// the race on this cluster; a
	// delete of the NetworkPolicy now is what an unordered namespace
	// controller (or a user) does, and only the finalizer keeps it.
	devcluster.MustKubectl(t, "", "delete", "networkpolicy", "loopguard-guard", "-n", w.a, "--wait=false")
	open := cell{cliB, srvA, port{"TCP", 8080}}
	guarded := cell{cliB, srvA, port{"TCP", 9090}}
	var served, probes int
	servedWith := map[string]int{} // the managed NetworkPolicy's state while the pod served
	var lastServed time.Duration
	for time.Since(deleted) < time.Duration(lingerSeconds+60)*time.Second {
		if r := devcluster.Kubectl(t, "", "get", "pod", "srv", "-n", w.a, "-o", "name"); r.Err != nil && strings.Contains(r.Stderr, "NotFound") {
			break
		}
		// The NetworkPolicy's state before the probes: a policy already
		// marked for deletion that still blocks is the finalizer at work.
		np := devcluster.Kubectl(t, "", "get", "networkpolicy", "loopguard-guard", "-n", w.a, "-o", "jsonpath={.metadata.deletionTimestamp}")
		npState := "present"
		switch {
		case np.Err != nil && strings.Contains(np.Stderr, "NotFound"):
			npState = "gone"
		case np.Err != nil:
			npState = "unknown"
		case np.Stdout != "":
			npState = "marked for deletion"
		}
		isOpen, err1 := w.probe(open)
		isGuardedOpen, err2 := w.probe(guarded)
		if err1 != nil || err2 != nil {
			continue
		}
		probes++
		if isGuardedOpen {
			t.Fatalf("%s after the namespace deletion: protected tcp/9090 of a/srv answered b/cli (NetworkPolicy: %q, err %v)",
				time.Since(deleted).Round(time.Millisecond), np.Stdout, np.Err)
		}
		if isOpen {
			served++
			lastServed = time.Since(deleted)
			servedWith[npState]++
		}
	}
	t.Logf("namespace deletion: %d probe pairs, the pod served tcp/8080 in %d of them (the last %s after the deletion), "+
		"the managed NetworkPolicy meanwhile %v; tcp/9090 stayed blocked throughout",
		probes, served, lastServed.Round(time.Millisecond), servedWith)
	if served == 0 {
		t.Fatalf("the pod never served after the namespace deletion: the test saw no window to check")
	}
	if servedWith["marked for deletion"] == 0 {
		t.Fatalf("the managed NetworkPolicy was never seen held (marked for deletion) while the pod served: %v", servedWith)
	}
}
