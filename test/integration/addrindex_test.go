package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/podview"
)

// TestPodsByIPAreExactInASharedBucket: the pod IP index shares one index
// set among the IPs of a bucket; a lookup must still return exactly the
// pods that own the address, on a real informer cache, in any namespace,
// as the cache's own objects (no copies).
func TestPodsByIPAreExactInASharedBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := env.Client
	// Three IPs in one bucket.
	target := "10.77.0.1"
	ips := []string{target}
	for i := 2; len(ips) < 3 && i < 1<<16; i++ {
		ip := fmt.Sprintf("10.77.%d.%d", i>>8, i&0xff)
		if addrindex.PodIPBucket(ip) == addrindex.PodIPBucket(target) {
			ips = append(ips, ip)
		}
	}
	if len(ips) < 3 {
		t.Fatalf("no three IPs in one bucket: %v", ips)
	}
	for i, ip := range ips {
		ns := fmt.Sprintf("ai-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
			Spec: corev1.PodSpec{NodeName: "ai-node", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1"}}}}
		if err := c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
		if err := c.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	ca := env.IndexedCache(ctx, t)
	slice := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{target}}}}
	named := func() ([]string, []*podview.Pod, error) {
		pods, err := addrindex.PodsNamed(ctx, ca, slice)
		var out []string
		for _, p := range pods {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return out, pods, err
	}
	var got []string
	var first []*podview.Pod
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		all, _ := clusterindex.Pods(ctx, ca, addrindex.PodIP, addrindex.PodIPBucket(target))
		var err error
		got, first, err = named()
		return len(all) == 3, err // every pod of the bucket is cached
	}); err != nil {
		t.Fatalf("the bucket's three pods never reached the cache: %v", err)
	}
	if !slices.Equal(got, []string{"ai-0/p"}) {
		t.Errorf("pods owning %s: %v, want only ai-0/p (its bucket mates own %v)", target, got, ips[1:])
	}
	if _, again, _ := named(); len(again) != 1 || len(first) != 1 || again[0] != first[0] {
		t.Errorf("the pod read twice is two objects: PodsNamed copies")
	}
	// By targetRef: the pod named, at an address no pod owns; none for a
	// pod that does not exist.
	slice.Endpoints = []discoveryv1.Endpoint{
		{Addresses: []string{"192.0.2.1"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "ai-1", Name: "p"}},
		{Addresses: []string{"192.0.2.2"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "ai-1", Name: "absent"}},
	}
	if got, pods, err := named(); err != nil || !slices.Equal(got, []string{"ai-1/p"}) || pods[0].PodIP != ips[1] {
		t.Errorf("pods named by targetRef: %v (%v), want ai-1/p with IP %s", got, err, ips[1])
	}
}

// TestSlicesNamingReadsTheCacheExactly: the EndpointSlices naming a pod
// (by one of its IPs, or by targetRef), in any namespace, are found
// through the cache's indexes as the cache's own objects (no copies),
// and a slice the EndpointSlice controller would write for a Service
// with a selector is left out: only hand-written ones are returned.
func TestSlicesNamingReadsTheCacheExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := env.Client
	for _, ns := range []string{"sn-pods", "sn-other"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "sn-pods", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "sn-node", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:1"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.78.0.1", PodIPs: []corev1.PodIP{{IP: "10.78.0.1"}}}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "sn-pods"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	port := func(p int32) []discoveryv1.EndpointPort { return []discoveryv1.EndpointPort{{Port: &p}} }
	for _, s := range []*discoveryv1.EndpointSlice{
		// By IP, from another namespace: hand-written.
		{ObjectMeta: metav1.ObjectMeta{Name: "by-ip", Namespace: "sn-other"}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.78.0.1"}}}, Ports: port(15000)},
		// By targetRef only: hand-written.
		{ObjectMeta: metav1.ObjectMeta{Name: "by-ref", Namespace: "sn-other"}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.78.9.9"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "sn-pods", Name: "web"}}}, Ports: port(15000)},
		// Another IP: not the pod's.
		{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "sn-other"}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.78.0.2"}}}, Ports: port(15000)},
		// What the EndpointSlice controller writes for the Service.
		{ObjectMeta: metav1.ObjectMeta{Name: "web-abcde", Namespace: "sn-pods", Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: svc.UID, Controller: ptr.To(true)}}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.78.0.1"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "sn-pods", Name: "web"}}}, Ports: port(80)},
	} {
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ca := env.IndexedCache(ctx, t)
	naming := func() ([]string, []*discoveryv1.EndpointSlice, error) {
		found, err := addrindex.SlicesNaming(ctx, ca, []*podview.Pod{podview.Of(pod)})
		var out []string
		for _, s := range found {
			out = append(out, s.Namespace+"/"+s.Name)
		}
		slices.Sort(out)
		return out, found, err
	}
	var got []string
	var first []*discoveryv1.EndpointSlice
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		all, err := clusterindex.EndpointSlices(ctx, ca, addrindex.SliceIP, "10.78.0.1")
		if err != nil {
			return false, err
		}
		got, first, err = naming()
		return len(all) == 2, err // both slices listing the IP are cached
	}); err != nil {
		t.Fatalf("the slices never reached the cache: %v", err)
	}
	if want := []string{"sn-other/by-ip", "sn-other/by-ref"}; !slices.Equal(got, want) {
		t.Errorf("slices naming sn-pods/web: %v, want %v", got, want)
	}
	// By IP first, then by reference: the same order each time.
	if _, again, _ := naming(); len(again) != 2 || len(first) != 2 || again[0] != first[0] || again[1] != first[1] {
		t.Errorf("the slice read twice is two objects: SlicesNaming copies")
	}
}
