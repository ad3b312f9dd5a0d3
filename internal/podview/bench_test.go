package podview_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/cache"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/internal/slim"
)

// The layout of bench/scalelarge at 150,000 pods (5,000 nodes, 1,500
// namespaces, 100 pods each, 2% hostNetwork), with what its pods lack
// and a real cluster's have: each namespace's pods belong to two
// Deployments (3,000 workloads, 50 pods each: ReplicaSet owner reference,
// app, tier and pod-template-hash labels), a workload has 1 or 2
// containers of 1 to 3 ports, and every pod has an IP (a hostNetwork pod
// its node's).
const (
	benchPods       = 150_000
	benchNodes      = 5_000
	benchNamespaces = 1_500
	podsPerNS       = benchPods / benchNamespaces
	workloadsPerNS  = 2
)

// decodedPod builds pod i as the API server's decoder would hand it to
// the transform: every string, map and slice its own (nothing shared with
// another pod), with the fields a real pod carries that the transform
// drops (annotations, managedFields, images, resources, env, mounts,
// tolerations, conditions, container statuses).
func decodedPod(i int) *corev1.Pod {
	ns := i / podsPerNS
	m := i % podsPerNS
	w := m % workloadsPerNS
	wl := ns*workloadsPerNS + w // workload number, 0..2999
	node := i % benchNodes
	hostNetwork := m%50 == 0
	app := fmt.Sprintf("w%d", w)
	hash := fmt.Sprintf("%08x", uint32(wl)*2654435761)[:8]
	rs := app + "-" + hash
	ip := fmt.Sprintf("10.%d.%d.%d", 64+node/256, node%256, 2+i/benchNodes)
	if hostNetwork {
		ip = fmt.Sprintf("172.16.%d.%d", node/256, node%256)
	}
	nCtrs := 1 + wl%2
	ctrs := make([]corev1.Container, nCtrs)
	for c := range ctrs {
		nPorts := 1 + (wl+c)%3
		ports := make([]corev1.ContainerPort, nPorts)
		for j := range ports {
			ports[j] = corev1.ContainerPort{Name: fmt.Sprintf("p%d", j), ContainerPort: int32(8080 + 10*c + j), Protocol: corev1.ProtocolTCP}
		}
		ctrs[c] = corev1.Container{
			Name: fmt.Sprintf("c%d", c), Image: fmt.Sprintf("registry.example/team-%d/app-%d:1.%d", ns%50, wl, c),
			Ports: ports,
			Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			VolumeMounts:             []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}
	}
	now := metav1.NewTime(time.Unix(1_764_000_000+int64(i), 0))
	yes := true
	statuses := make([]corev1.ContainerStatus, nCtrs)
	for c := range statuses {
		statuses[c] = corev1.ContainerStatus{Name: fmt.Sprintf("c%d", c), Ready: true, Image: ctrs[c].Image,
			ImageID: "sha256:" + strings.Repeat("ab", 32), ContainerID: fmt.Sprintf("containerd://%064x", i*2+c),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%05x", rs, i), GenerateName: rs + "-", Namespace: fmt.Sprintf("ns-%04d", ns),
			UID: types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)), ResourceVersion: strconv.Itoa(1_000_000 + i),
			CreationTimestamp: now,
			Labels:            map[string]string{"app": app, "tier": fmt.Sprintf("t%d", m%4), "pod-template-hash": hash},
			Annotations:       map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-12-01T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
				UID: types.UID(fmt.Sprintf("rs-%08x-0000-4000-8000-%012x", wl, wl)), Controller: &yes, BlockOwnerDeletion: &yes}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
				APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat(`{"f:spec":{}}`, 30))}}},
		},
		Spec: corev1.PodSpec{
			NodeName: fmt.Sprintf("node-%04d", node), HostNetwork: hostNetwork, Containers: ctrs,
			ServiceAccountName: "default", RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSClusterFirst,
			SchedulerName: "default-scheduler",
			Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: fmt.Sprintf("172.16.%d.%d", node/256, node%256),
			PodIP: ip, PodIPs: []corev1.PodIP{{IP: strings.Clone(ip)}}, StartTime: &now, QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}},
			ContainerStatuses: statuses,
		},
	}
}

// The pod indexes the manager registers: controller-runtime's namespace
// index; pods by node and by IP bucket through clusterindex (all
// namespaces only); hostNetwork node, hostNetwork, node-mate node and
// node-mate through mgr.GetFieldIndexer (a namespaced and an
// all-namespaces key each).
func indexers(nodeOf func(any) string, hostNet func(any) bool, ipBuckets func(any) []string, risky func(any) bool) cache.Indexers {
	all := func(vals ...string) []string {
		for i := range vals {
			vals[i] = "__all_namespaces/" + vals[i]
		}
		return vals
	}
	both := func(obj any, vals ...string) []string {
		if len(vals) == 0 {
			return nil
		}
		ns := obj.(metav1.Object).GetNamespace()
		out := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			out = append(out, ns+"/"+v)
		}
		for _, v := range vals {
			out = append(out, "__all_namespaces/"+v)
		}
		return out
	}
	return cache.Indexers{
		cache.NamespaceIndex: cache.MetaNamespaceIndexFunc,
		"field:loopguard.io/node": func(o any) ([]string, error) {
			if n := nodeOf(o); n != "" {
				return all(n), nil
			}
			return nil, nil
		},
		"field:" + addrindex.PodIP: func(o any) ([]string, error) { return all(ipBuckets(o)...), nil },
		"field:loopguard.io/hostNetworkNode": func(o any) ([]string, error) {
			if n := nodeOf(o); n != "" && hostNet(o) {
				return both(o, n), nil
			}
			return nil, nil
		},
		"field:loopguard.io/hostNetwork": func(o any) ([]string, error) {
			if hostNet(o) {
				return both(o, "true"), nil
			}
			return nil, nil
		},
		"field:loopguard.io/nodeMateNode": func(o any) ([]string, error) {
			if n := nodeOf(o); n != "" && risky(o) {
				return both(o, n), nil
			}
			return nil, nil
		},
		"field:loopguard.io/nodeMate": func(o any) ([]string, error) {
			if risky(o) {
				return both(o, "true"), nil
			}
			return nil, nil
		},
	}
}

func buckets(ips []corev1.PodIP) []string {
	var out []string
	for _, ip := range ips {
		b := addrindex.PodIPBucket(ip.IP)
		if !strings.Contains(strings.Join(out, ","), b) {
			out = append(out, b)
		}
	}
	return out
}

var podIndexers = indexers(
	func(o any) string { return o.(*corev1.Pod).Spec.NodeName },
	func(o any) bool { return o.(*corev1.Pod).Spec.HostNetwork },
	func(o any) []string { return addrindex.PodIPs(o.(*corev1.Pod)) },
	func(o any) bool { return len(hostnet.NodeMateRisks(&o.(*corev1.Pod).Spec)) > 0 },
)

var viewIndexers = indexers(
	func(o any) string { return o.(*podview.Pod).NodeName },
	func(o any) bool { return o.(*podview.Pod).TrimmedSpec.HostNetwork },
	func(o any) []string {
		p := o.(*podview.Pod)
		// rules.PodIPs' conditions, on the view.
		if p.TrimmedSpec.HostNetwork || p.DeletionTimestamp != nil || p.Phase == corev1.PodSucceeded || p.Phase == corev1.PodFailed {
			return nil
		}
		return buckets(p.IPs())
	},
	func(o any) bool { return len(hostnet.NodeMateRisks(o.(*podview.Pod).TrimmedSpec)) > 0 },
)

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measure runs benchPods decoded pods through transform, keeping the
// results (in a slice, or in an indexer with idx), and reports the live
// heap per pod they and the transform's tables hold.
func measure(b *testing.B, transform func(any) (any, error), idx cache.Indexers) {
	for range b.N {
		var store cache.Indexer
		kept := make([]any, benchPods)
		before := liveHeap()
		if idx != nil {
			store = cache.NewIndexer(cache.MetaNamespaceKeyFunc, idx)
		}
		for i := range benchPods {
			obj, err := transform(decodedPod(i))
			if err != nil {
				b.Fatal(err)
			}
			if store != nil {
				if err := store.Add(obj); err != nil {
					b.Fatal(err)
				}
			} else {
				kept[i] = obj
			}
		}
		after := liveHeap()
		b.ReportMetric(float64(after-before)/benchPods, "B/pod")
		b.ReportMetric(float64(after-before)/1e6, "MB")
		runtime.KeepAlive(kept)
		runtime.KeepAlive(store)
	}
}

// BenchmarkLiveHeap measures the live heap per cached pod at 150,000
// pods: (a) today's trimmed corev1.Pod (slim.NewPodTransform), (b) the
// compact podview.Pod (NewTransform); objects alone, then in an informer
// store with the manager's pod indexes. Run with -benchtime=1x.
func BenchmarkLiveHeap(b *testing.B) {
	b.Run("a_corev1Pod_objects", func(b *testing.B) { measure(b, slim.NewPodTransform(), nil) })
	b.Run("b_podviewPod_objects", func(b *testing.B) { measure(b, podview.NewTransform(), nil) })
	b.Run("a_corev1Pod_store", func(b *testing.B) { measure(b, slim.NewPodTransform(), podIndexers) })
	b.Run("b_podviewPod_store", func(b *testing.B) { measure(b, podview.NewTransform(), viewIndexers) })
}

// TestFromPodKeepsWhatTheRulesRead: a Pod's spec is the trimmed pod's
// (the node name aside) and its IPs are rules.PodIPs'.
func TestFromPodKeepsWhatTheRulesRead(t *testing.T) {
	trim := slim.NewPodTransform()
	c := podview.NewConverter()
	var views []*podview.Pod
	for _, i := range []int{0, 1, 2, 3, 50, 100, 101, 149_999} {
		o, _ := trim(decodedPod(i))
		p := o.(*corev1.Pod)
		v := c.FromPod(p)
		views = append(views, v)
		spec := *v.TrimmedSpec
		spec.NodeName = p.Spec.NodeName
		back := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: v.Namespace, Name: v.Name, Labels: v.Labels,
			OwnerReferences: v.OwnerReferences}, Spec: spec, Status: corev1.PodStatus{Phase: v.Phase, PodIP: v.PodIP, PodIPs: v.IPs()}}
		if fmt.Sprint(oldPodIPs(back)) != fmt.Sprint(oldPodIPs(p)) {
			t.Errorf("pod %d: IPs %v, want %v", i, oldPodIPs(back), oldPodIPs(p))
		}
		if fmt.Sprint(rules.PodIPs(v)) != fmt.Sprint(oldPodIPs(p)) {
			t.Errorf("pod %d: rules.PodIPs %v, want %v", i, rules.PodIPs(v), oldPodIPs(p))
		}
		if fmt.Sprintf("%+v", back.Spec) != fmt.Sprintf("%+v", p.Spec) || v.NodeName != p.Spec.NodeName || v.TrimmedSpec.NodeName != "" {
			t.Errorf("pod %d: spec differs", i)
		}
	}
	// Pods 0 and 100 (hostNetwork, workload 0 of namespaces 0 and 1) share
	// no spec: different workloads; 2 and 102 neither. Pods 2 and 4 (one
	// workload, one namespace) do.
	o2, _ := trim(decodedPod(2))
	o4, _ := trim(decodedPod(4))
	if c.FromPod(o2.(*corev1.Pod)).TrimmedSpec != c.FromPod(o4.(*corev1.Pod)).TrimmedSpec {
		t.Error("pods of one workload do not share their spec")
	}
	if views[0].TrimmedSpec == views[2].TrimmedSpec {
		t.Error("a hostNetwork pod shares the spec of a pod without it")
	}
}

// TestJudgedIdentically: the rules judge a Pod's spec as they judge the
// full pod an admission review carries, field paths (container and port
// indexes) included; and hostnet.NodeMateRisks finds the same risks.
func TestJudgedIdentically(t *testing.T) {
	lbs := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-0001", Name: "p"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 8081}, {Port: 8090}, {Port: 8092}},
			HostNetwork: v1alpha1.HostNetworkAction("Audit"),
		}}
	pol, err := rules.Compile(lbs)
	if err != nil {
		t.Fatal(err)
	}
	env := rules.NewEnv("ns-0001", nil, rules.NewSet([]*rules.Policy{pol}))
	trim := podview.NewTransform()
	privileged := true
	for _, i := range []int{100, 101, 102, 103, 150, 151, 199} {
		risky := i == 151
		full := func() *corev1.Pod {
			p := decodedPod(i)
			if risky {
				p.Spec.Containers[len(p.Spec.Containers)-1].SecurityContext = &corev1.SecurityContext{Privileged: &privileged}
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "sock", VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: "/run/containerd/containerd.sock"}}})
			}
			return p
		}
		review := full()
		o, _ := trim(full())
		v := o.(*podview.Pod)
		want, _ := rules.PodTemplateOf(review)
		got := rules.PodTemplate{Object: rules.ObjectRef{Kind: "Pod", Namespace: v.Namespace, Name: v.Name},
			Labels: v.Labels, Spec: v.TrimmedSpec, SpecPath: field.NewPath("spec")}
		wf, gf := rules.EvaluatePod(env, want), rules.EvaluatePod(env, got)
		if len(wf) == 0 {
			t.Errorf("pod %d: no finding to compare", i)
		}
		if fmt.Sprint(messages(wf)) != fmt.Sprint(messages(gf)) {
			t.Errorf("pod %d: findings\n%v\nwant\n%v", i, messages(gf), messages(wf))
		}
		if testing.Verbose() {
			t.Logf("pod %d: %v", i, messages(gf))
		}
		// As the rules take a cached pod: through PodTemplateOf.
		if viaTemplate, ok := rules.PodTemplateOf(v); !ok || fmt.Sprint(messages(rules.EvaluatePod(env, viaTemplate))) != fmt.Sprint(messages(wf)) {
			t.Errorf("pod %d: PodTemplateOf(*podview.Pod) (ok %v) judged otherwise", i, ok)
		}
		wr, gr := hostnet.NodeMateRisks(&review.Spec), hostnet.NodeMateRisks(v.TrimmedSpec)
		if fmt.Sprint(wr) != fmt.Sprint(gr) || risky != (len(wr) > 0) {
			t.Errorf("pod %d: node-mate risks %v, want %v", i, gr, wr)
		}
	}
}

func messages(fs []rules.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Field + ": " + f.Message()
	}
	return out
}

// BenchmarkFromPod is what NewTransform adds to slim's transform for each
// pod event: one 192-byte Pod and a lookup of the shared spec.
func BenchmarkFromPod(b *testing.B) {
	trim := slim.NewPodTransform()
	pods := make([]*corev1.Pod, 1000)
	for i := range pods {
		o, _ := trim(decodedPod(i * 7))
		pods[i] = o.(*corev1.Pod)
	}
	c := podview.NewConverter()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = c.FromPod(pods[i%len(pods)])
	}
}
