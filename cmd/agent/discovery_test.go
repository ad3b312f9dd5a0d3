package main

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/bindscan"
)

func sock(proto bindscan.Protocol, addr string, port uint16) bindscan.Socket {
	return bindscan.Socket{Protocol: proto, Addr: netip.MustParseAddr(addr), Port: port}
}

// TestDiscovery: with discovery every running pod is a target, protected
// or not; status.pods keeps the protected ones only; status.discovery
// lists each pod's other listeners classified by address, one entry per
// socket address, without PIDs, and a restart (new PIDs) is the same
// report.
func TestDiscovery(t *testing.T) {
	withIP := func(p *corev1.Pod) {
		p.Status.PodIP = "10.244.0.7"
		p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.7"}, {IP: "fd00::7"}}
	}
	pods := []corev1.Pod{
		testPod("shop", "cart-1", "u1", map[string]string{"app": "cart"}, withIP),
		testPod("shop", "web-1", "u2", map[string]string{"app": "web"}, withIP),
		testPod("shop", "quiet", "u3", map[string]string{"app": "quiet"}),
	}
	if got := selectTargets(pods, policyEnv(t), false); len(got) != 1 {
		t.Fatalf("without discovery: %d targets, want 1", len(got))
	}
	targets := selectTargets(pods, policyEnv(t), true)
	if len(targets) != 3 || !targets[0].protected || targets[1].protected || !targets[1].target.Discover {
		t.Fatalf("with discovery: targets %+v", targets)
	}
	results := func(pid int) []bindscan.Result {
		own := func(s bindscan.Socket) bindscan.Listener {
			return bindscan.Listener{Socket: s, PID: pid, Process: "envoy", ContainerID: "c-u2"}
		}
		return []bindscan.Result{
			{UID: "u1", Discovered: []bindscan.Listener{own(sock(bindscan.TCP, "127.0.0.1", 9901))}},
			{UID: "u2", Discovered: []bindscan.Listener{
				own(sock(bindscan.TCP, "0.0.0.0", 8080)),
				own(sock(bindscan.TCP, "0.0.0.0", 8080)), // SO_REUSEPORT twin
				own(sock(bindscan.TCP, "::ffff:127.0.0.1", 15000)),
				own(sock(bindscan.UDP, "::1", 5353)),
				own(sock(bindscan.TCP, "10.244.0.7", 9090)),
				own(sock(bindscan.TCP, "fd00::7", 9091)),
				own(sock(bindscan.TCP, "10.245.0.1", 9092)),
				{Socket: sock(bindscan.TCP, "::", 9093)}, // owner unknown
			}},
			{UID: "u3"},
		}
	}
	o := scanOutcome{targets: targets, results: results(42), start: time.Now()}
	st := buildStatus(o, time.Minute, 5*time.Minute, nil)
	st.Discovery = buildDiscovery(o)
	if len(st.Pods) != 1 || st.Pods[0].Name != "cart-1" || st.PodsChecked != 1 {
		t.Errorf("status.pods = %+v, want cart-1 alone", st.Pods)
	}
	l := func(proto corev1.Protocol, class v1alpha1.AddressClass, addr string, port int32) v1alpha1.DiscoveredListener {
		return v1alpha1.DiscoveredListener{Protocol: proto, AddressClass: class, Address: addr, Port: port, Container: "app", Process: "envoy"}
	}
	want := &v1alpha1.DiscoveryStatus{Pods: []v1alpha1.DiscoveredPod{
		{Namespace: "shop", Name: "cart-1", UID: "u1", Listeners: []v1alpha1.DiscoveredListener{
			{Protocol: "TCP", AddressClass: v1alpha1.AddressClassLoopback, Address: "127.0.0.1", Port: 9901, Process: "envoy"},
		}},
		{Namespace: "shop", Name: "web-1", UID: "u2", Listeners: []v1alpha1.DiscoveredListener{
			l("TCP", v1alpha1.AddressClassWildcard, "0.0.0.0", 8080),
			l("TCP", v1alpha1.AddressClassLoopback, "::ffff:127.0.0.1", 15000),
			l("UDP", v1alpha1.AddressClassLoopback, "::1", 5353),
			l("TCP", v1alpha1.AddressClassPodIP, "10.244.0.7", 9090),
			l("TCP", v1alpha1.AddressClassPodIP, "fd00::7", 9091),
			l("TCP", v1alpha1.AddressClassOther, "10.245.0.1", 9092),
			{Protocol: "TCP", AddressClass: v1alpha1.AddressClassWildcard, Address: "::", Port: 9093},
		}},
	}}
	// cart-1's loopback listener has container "app" only when its
	// container ID is the pod's: here it is u2's, so it is unknown.
	if !equality.Semantic.DeepEqual(st.Discovery, want) {
		t.Errorf("discovery =\n%+v\nwant\n%+v", st.Discovery, want)
	}
	o2 := scanOutcome{targets: targets, results: results(4242), start: time.Now().Add(time.Minute)}
	again := buildStatus(o2, time.Minute, 5*time.Minute, &st)
	again.Discovery = buildDiscovery(o2)
	if !sameFindings(&st, &again) {
		t.Error("the same listeners under new PIDs: sameFindings = false (the report would be rewritten)")
	}
}

func TestDiscoveryBounds(t *testing.T) {
	var pods []corev1.Pod
	var res []bindscan.Result
	for i := range v1alpha1.MaxDiscoveredPods + 5 {
		uid := "u" + time.Duration(i).String()
		pods = append(pods, testPod("shop", "p-"+uid, uid, nil))
		r := bindscan.Result{UID: uid}
		for port := range v1alpha1.MaxDiscoveredListeners + 3 {
			r.Discovered = append(r.Discovered, bindscan.Listener{Socket: sock(bindscan.TCP, "127.0.0.1", uint16(1000+port))})
		}
		res = append(res, r)
	}
	d := buildDiscovery(scanOutcome{targets: selectTargets(pods, policyEnv(t), true), results: res})
	if len(d.Pods) != v1alpha1.MaxDiscoveredPods || !d.Truncated || len(d.Pods[0].Listeners) != v1alpha1.MaxDiscoveredListeners {
		t.Errorf("pods %d (truncated %v), listeners of the first %d", len(d.Pods), d.Truncated, len(d.Pods[0].Listeners))
	}
}

// TestClientReports: one entry per distinct client (several connections
// and PIDs of one client are one), the pod's container by name, outside
// without one, sorted.
func TestClientReports(t *testing.T) {
	tg := selectTargets([]corev1.Pod{testPod("shop", "cart-1", "u1", map[string]string{"app": "cart"})}, policyEnv(t), false)[0]
	if !tg.target.Clients {
		t.Fatal("a protected pod's target does not ask for clients")
	}
	got := clientReports(tg, []bindscan.Client{
		{Port: 15000, PID: 7, Process: "containerd", Outside: true},
		{Port: 15000, PID: 42, Process: "curl", ContainerID: "c-u1"},
		{Port: 15000, PID: 43, Process: "curl", ContainerID: "c-u1"},
		{Port: 15000, PID: 8, Process: "containerd", Outside: true},
	})
	want := []v1alpha1.BindClient{{Port: 15000, Container: "app", Process: "curl"}, {Port: 15000, Outside: true, Process: "containerd"}}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("clients = %+v, want %+v", got, want)
	}
}
