package main

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/bindscan"
	"github.com/loopguard/loopguard/internal/rules"
)

func testPod(ns, name, uid string, labels map[string]string, opts ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: labels},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", ContainerID: "containerd://c-" + uid},
		}},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func policyEnv(t *testing.T) envFor {
	t.Helper()
	lbs := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
		},
	}
	p, err := rules.Compile(lbs)
	if err != nil {
		t.Fatal(err)
	}
	set := rules.NewSet([]*rules.Policy{p})
	return func(ns string) *rules.Env { return &rules.Env{Namespace: ns, Sets: []*rules.Set{set}} }
}

func TestSelectTargets(t *testing.T) {
	cart := map[string]string{"app": "cart"}
	pods := []corev1.Pod{
		testPod("shop", "cart-1", "u1", cart),
		testPod("shop", "web-1", "u2", map[string]string{"app": "web"}),
		testPod("billing", "cart-1", "u3", cart),
		testPod("shop", "cart-pending", "u4", cart, func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
		testPod("shop", "cart-host", "u5", cart, func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
	}
	got := selectTargets(pods, policyEnv(t), false)
	var names []string
	for _, tg := range got {
		names = append(names, tg.pod.Name)
		if len(tg.target.Ranges) != 1 || tg.target.Ranges[0] != (bindscan.PortRange{Protocol: bindscan.TCP, From: 15000, To: 15000}) {
			t.Errorf("%s: ranges %v, want 15000/TCP", tg.pod.Name, tg.target.Ranges)
		}
		if tg.containers["c-"+string(tg.pod.UID)] != "app" {
			t.Errorf("%s: containers %v", tg.pod.Name, tg.containers)
		}
	}
	if want := []string{"cart-1", "cart-host"}; len(names) != 2 || names[0] != want[0] || names[1] != want[1] {
		t.Errorf("targets = %v, want %v", names, want)
	}
	if !got[1].target.HostNetwork {
		t.Error("cart-host: HostNetwork not set")
	}
}

func TestBuildStatus(t *testing.T) {
	cart := map[string]string{"app": "cart"}
	pods := []corev1.Pod{testPod("shop", "b", "u1", cart), testPod("shop", "a", "u2", cart), testPod("shop", "c", "u3", cart)}
	targets := selectTargets(pods, policyEnv(t), false)
	results := []bindscan.Result{
		{UID: "u1", Listeners: []bindscan.Listener{{
			Socket: bindscan.Socket{Protocol: bindscan.TCP, Addr: netip.MustParseAddr("0.0.0.0"), Port: 15000},
			PID:    42, Process: "listener", ContainerID: "c-u1",
		}}},
		{UID: "u2"},
		{UID: "u3", Unchecked: "no process in the pod's cgroups"},
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := buildStatus(scanOutcome{targets: targets, results: results, start: start, duration: 3 * time.Millisecond}, time.Minute, 5*time.Minute, nil)
	if st.PodsChecked != 2 || st.PodsBeyondLoopback != 1 || len(st.Pods) != 3 {
		t.Fatalf("status = %+v", st)
	}
	if st.Pods[0].Name != "a" || st.Pods[1].Name != "b" || st.Pods[2].Name != "c" {
		t.Errorf("pods not sorted by name: %v %v %v", st.Pods[0].Name, st.Pods[1].Name, st.Pods[2].Name)
	}
	l := st.Pods[1].Listeners
	want := v1alpha1.BindListener{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000, Container: "app", ContainerID: "containerd://c-u1", PID: 42, Process: "listener"}
	if len(l) != 1 || l[0] != want {
		t.Errorf("listeners = %+v, want %+v", l, want)
	}
	if st.Pods[2].Unchecked == "" {
		t.Error("pod c: unchecked reason lost")
	}
	if c := st.Conditions; len(c) != 1 || c[0].Status != metav1.ConditionTrue {
		t.Errorf("conditions = %+v", c)
	}

	// Another scan with the same findings is the same report, apart from
	// when it ran; a failed scan is not.
	again := buildStatus(scanOutcome{targets: targets, results: results, start: start.Add(time.Minute), duration: 5 * time.Millisecond}, time.Minute, 5*time.Minute, &st)
	if !sameFindings(&st, &again) {
		t.Error("same findings, later scan: sameFindings = false")
	}
	failed := buildStatus(scanOutcome{err: errors.New("failed to list processes"), start: start}, time.Minute, 5*time.Minute, &st)
	if sameFindings(&st, &failed) || failed.Conditions[0].Status != metav1.ConditionFalse || len(failed.Errors) != 1 {
		t.Errorf("failed scan: %+v", failed)
	}
}

func TestBuildStatusTruncates(t *testing.T) {
	cart := map[string]string{"app": "cart"}
	var pods []corev1.Pod
	var results []bindscan.Result
	for i := range v1alpha1.MaxReportPods + 10 {
		uid := string(rune('a'+i%26)) + time.Duration(i).String()
		pods = append(pods, testPod("shop", "p-"+uid, uid, cart))
		r := bindscan.Result{UID: uid}
		if i == v1alpha1.MaxReportPods+5 { // a finding past the cut still makes it
			r.Listeners = []bindscan.Listener{{Socket: bindscan.Socket{Protocol: bindscan.TCP, Addr: netip.MustParseAddr("::"), Port: 15000}}}
		}
		results = append(results, r)
	}
	st := buildStatus(scanOutcome{targets: selectTargets(pods, policyEnv(t), false), results: results}, time.Minute, 5*time.Minute, nil)
	if len(st.Pods) != v1alpha1.MaxReportPods || !st.Truncated || st.PodsBeyondLoopback != 1 {
		t.Fatalf("pods %d truncated %v beyond %d", len(st.Pods), st.Truncated, st.PodsBeyondLoopback)
	}
	found := false
	for _, p := range st.Pods {
		found = found || len(p.Listeners) > 0
	}
	if !found {
		t.Error("the pod with a finding was cut")
	}
}
