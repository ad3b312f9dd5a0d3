package cli

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestAuditRuntime shows the node agents' findings (NodeBindReports, as
// an agent writes them) next to the declared ones: a fresh report's
// listeners under the policy that protects each port, a stale report's pods
// as unchecked, and a runtime finding under Deny failing the audit.
func TestAuditRuntime(t *testing.T) {
	e := controlPlane(t)
	ctx := context.Background()
	c := e.Client
	create(t, c,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bank"}},
		&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: "bank"},
			Spec:       v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 15000}}, EnforcementAction: v1alpha1.ActionDeny},
		},
		&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "metrics", Namespace: "bank"},
			Spec:       v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 9090}, {Port: 5353, Protocol: corev1.ProtocolUDP}}, EnforcementAction: v1alpha1.ActionAudit},
		},
	)
	// Gone afterwards, so TestAudit -A does not audit bank.
	t.Cleanup(func() {
		_ = c.DeleteAllOf(ctx, &v1alpha1.LoopbackService{}, client.InNamespace("bank"))
	})
	pod := func(name, node string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bank"},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		create(t, c, p)
		p.Status.Phase = corev1.PodRunning
		must(t, c.Status().Update(ctx, p))
		return p
	}
	api, web, batch := pod("api", "rt-1"), pod("web", "rt-1"), pod("batch", "rt-2")
	report := func(node string, scannedAt time.Time, pods ...v1alpha1.PodBindReport) {
		r := &v1alpha1.NodeBindReport{ObjectMeta: metav1.ObjectMeta{Name: node}}
		create(t, c, r)
		t.Cleanup(func() { _ = c.Delete(ctx, r) }) // TestAudit's goldens have no reports
		r.Status = v1alpha1.NodeBindReportStatus{ScannedAt: &metav1.Time{Time: scannedAt}, ScanInterval: &metav1.Duration{Duration: time.Minute}, Pods: pods}
		must(t, c.Status().Update(ctx, r))
	}
	entry := func(p *corev1.Pod, ls ...v1alpha1.BindListener) v1alpha1.PodBindReport {
		return v1alpha1.PodBindReport{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Listeners: ls}
	}
	report("rt-1", time.Now(),
		entry(api,
			v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000, Container: "app", Process: "envoy", PID: 41},
			v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: "10.244.0.9", Port: 9090, Container: "app", Process: "envoy", PID: 41},
			v1alpha1.BindListener{Protocol: corev1.ProtocolUDP, Address: "::", Port: 5353}),
		entry(web))
	report("rt-2", time.Now().Add(-time.Hour), entry(batch, v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000}))

	// No progress lines in the golden, however slow the machine.
	defer func(d time.Duration) { progressAfter = d }(progressAfter)
	progressAfter = time.Hour
	kubeconfig := writeKubeconfig(t, e.Config, "bank")
	stdout, stderr, code := run(t, "", "audit", "--kubeconfig", kubeconfig)
	if code != ExitViolations {
		t.Errorf("exit status %d, want %d (a Deny port listening)", code, ExitViolations)
	}
	golden(t, "audit/runtime.table.golden", transcript([]string{"audit", "--kubeconfig", "KUBECONFIG"}, "", stdout, stderr, code))

	stdout, _, _ = run(t, "", "audit", "--kubeconfig", kubeconfig, "-o", "json")
	var rep auditReport
	must(t, json.Unmarshal([]byte(stdout), &rep))
	if rep.Runtime == nil {
		t.Fatalf("no runtime section:\n%s", stdout)
	}
	rt := rep.Runtime
	if rt.PodsChecked != 2 || rt.PodsUnchecked != 1 || len(rt.Listeners) != 3 || len(rt.StaleNodes) != 1 || rt.StaleNodes[0] != "rt-2" {
		t.Errorf("runtime: %+v", rt)
	}
	if s := rep.Summary; s.RuntimeListeners != 3 || s.RuntimeDeny != 1 || s.Result != "fail" {
		t.Errorf("summary: %+v", s)
	}
	for _, l := range rt.Listeners {
		if l.Port == 15000 && (l.Action != "Deny" || l.PID != 41 || l.Process != "envoy" || l.Node != "rt-1") {
			t.Errorf("listener: %+v", l)
		}
	}
}
