package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/internal/slim"
)

// TestRuntimeViewOfASlimReport: the manager caches NodeBindReports
// through slim.NodeBindReport; what the runtime view, the report
// controller's digests and the staleness make of a report must not change
// through it.
func TestRuntimeViewOfASlimReport(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	lbs := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy", UID: "u-envoy", Generation: 1},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000, Clients: []string{"app"}}, {Port: 9901}},
		},
	}
	p, err := rules.Compile(lbs)
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name string, uid types.UID) *podview.Pod {
		return podview.Of(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: uid, Labels: map[string]string{"app": "cart"}},
			Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		})
	}
	pods := []*podview.Pod{pod("cart-1", "u1"), pod("cart-2", "u2"), pod("cart-3", "u3")}
	report := &v1alpha1.NodeBindReport{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Annotations: map[string]string{"a": "b"}},
		Status: v1alpha1.NodeBindReportStatus{
			ScannedAt:       &metav1.Time{Time: now.Add(-10 * time.Second)},
			ScanInterval:    &metav1.Duration{Duration: 30 * time.Second},
			RefreshInterval: &metav1.Duration{Duration: 5 * time.Minute},
			ScanDuration:    &metav1.Duration{Duration: 3 * time.Millisecond},
			PodsChecked:     2, PodsBeyondLoopback: 1,
			Pods: []v1alpha1.PodBindReport{
				{Namespace: "shop", Name: "cart-1", UID: "u1", Listeners: []v1alpha1.BindListener{
					{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000, Container: "app", ContainerID: "containerd://abc", PID: 4242, Process: "envoy"},
					{Protocol: corev1.ProtocolUDP, Address: "10.0.0.7", Port: 9901, Container: "app", PID: 4243, Process: "envoy"},
				}, Clients: []v1alpha1.BindClient{{Port: 15000, Container: "debug", Process: "nc"}, {Port: 15000, Outside: true, Process: "containerd"}}},
				{Namespace: "shop", Name: "cart-2", UID: "u2", HostNetwork: true},
				{Namespace: "shop", Name: "cart-3", UID: "u3", Unchecked: "the pod's network namespace was not found"},
			},
			Errors:     []string{"pod shop/cart-3: not found"},
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "ScanSucceeded", LastTransitionTime: metav1.Time{Time: now}}},
			Discovery: &v1alpha1.DiscoveryStatus{Pods: []v1alpha1.DiscoveredPod{{Namespace: "shop", Name: "cart-1", UID: "u1",
				Listeners: []v1alpha1.DiscoveredListener{{Protocol: corev1.ProtocolTCP, AddressClass: "Loopback", Address: "127.0.0.1", Port: 15000}}}}},
		},
	}
	slimmed, err := slim.NodeBindReport(report.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	if s := slimmed.(*v1alpha1.NodeBindReport); s.Status.Discovery != nil || s.Status.Pods[0].Listeners[0].PID != 0 {
		t.Fatalf("the transform kept what it drops: %+v", s.Status)
	}
	view := func(r *v1alpha1.NodeBindReport) *v1alpha1.RuntimeStatus {
		c := fake.NewClientBuilder().WithScheme(app.Scheme()).WithObjects(r).Build()
		rt, err := runtimeOf(context.Background(), c, now, p, lbs.Spec.Ports, pods)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	full, slimView := view(report.DeepCopy()), view(slimmed.(*v1alpha1.NodeBindReport))
	if full.PodsBeyondLoopback == 0 || full.UnexpectedClientCount == 0 || full.PodsUnchecked == 0 {
		t.Fatalf("the report must exercise listeners, clients and unchecked pods: %+v", full)
	}
	if d := cmp.Diff(full, slimView); d != "" {
		t.Errorf("the runtime view changed through the cache transform (-full +slim):\n%s", d)
	}
	s := slimmed.(*v1alpha1.NodeBindReport)
	if !staleAt(report).Equal(staleAt(s)) {
		t.Errorf("staleness changed: %v, %v", staleAt(report), staleAt(s))
	}
	for i := range report.Status.Pods {
		if digest(&report.Status.Pods[i]) != digest(&s.Status.Pods[i]) {
			t.Errorf("pod %s's digest changed", report.Status.Pods[i].Name)
		}
	}
}
