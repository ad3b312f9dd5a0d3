package discover

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

const ns = "shop"

func ref(kind, name string) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{Kind: kind, Name: name, UID: types.UID(kind + "-" + name), Controller: &t}
}

func meta(name, kind string, owner ...metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(kind + "-" + name), OwnerReferences: owner}
}

func tmpl(l map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}}
}

func pod(name string, lbls map[string]string, owner *metav1.OwnerReference, ports ...int32) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("pod-" + name), Labels: lbls}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	c := corev1.Container{Name: "app"}
	for _, port := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port})
	}
	p.Spec.Containers = []corev1.Container{c}
	return p
}

func listener(proto corev1.Protocol, class v1alpha1.AddressClass, addr string, port int32, ctr, proc string) v1alpha1.DiscoveredListener {
	return v1alpha1.DiscoveredListener{Protocol: proto, AddressClass: class, Address: addr, Port: port, Container: ctr, Process: proc}
}

func lo(port int32, ctr string) v1alpha1.DiscoveredListener {
	return listener("TCP", v1alpha1.AddressClassLoopback, "127.0.0.1", port, ctr, "listener")
}

func wild(port int32) v1alpha1.DiscoveredListener {
	return listener("TCP", v1alpha1.AddressClassWildcard, "0.0.0.0", port, "app", "listener")
}

func report(node string, pods ...v1alpha1.DiscoveredPod) v1alpha1.NodeBindReport {
	r := v1alpha1.NodeBindReport{ObjectMeta: metav1.ObjectMeta{Name: node}}
	r.Status.Discovery = &v1alpha1.DiscoveryStatus{Pods: pods}
	return r
}

func seen(p corev1.Pod, ls ...v1alpha1.DiscoveredListener) v1alpha1.DiscoveredPod {
	return v1alpha1.DiscoveredPod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Listeners: ls}
}

func TestPropose(t *testing.T) {
	web := map[string]string{"app": "web"}
	webPod := map[string]string{"app": "web", "pod-template-hash": "5d9c"}
	deploy := &appsv1.Deployment{ObjectMeta: meta("web", "Deployment"), Spec: appsv1.DeploymentSpec{Template: tmpl(web)}}
	rsRef := ref("ReplicaSet", "web-5d9c")
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("web-5d9c", "ReplicaSet", ref("Deployment", "web")), Spec: appsv1.ReplicaSetSpec{Template: tmpl(webPod)}}
	web1, web2 := pod("web-5d9c-a", webPod, &rsRef, 8080), pod("web-5d9c-b", webPod, &rsRef, 8080)
	dsRef := ref("DaemonSet", "exporter")
	ds := &appsv1.DaemonSet{ObjectMeta: meta("exporter", "DaemonSet"), Spec: appsv1.DaemonSetSpec{Template: tmpl(map[string]string{"app": "exporter"})}}
	exp := pod("exporter-x", map[string]string{"app": "exporter", "controller-revision-hash": "77"}, &dsRef)
	jobRef := ref("Job", "backup-1")
	cj := &batchv1.CronJob{ObjectMeta: meta("backup", "CronJob"), Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl(map[string]string{"app": "backup"})}}}}
	job := &batchv1.Job{ObjectMeta: meta("backup-1", "Job", ref("CronJob", "backup")), Spec: batchv1.JobSpec{Template: tmpl(map[string]string{"app": "backup", "job-name": "backup-1"})}}
	bk := pod("backup-1-z", map[string]string{"app": "backup", "job-name": "backup-1"}, &jobRef)
	bare := pod("udp", map[string]string{"app": "udp"}, nil)
	unlabelled := pod("naked", nil, nil)
	owners := []client.Object{deploy, rs, ds, cj, job}
	webSvc := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: web, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(9090)}}}}

	webProposal := func(ports ...Port) Proposal {
		return Proposal{Workload: Workload{"Deployment", ns, "web"}, Name: "web-loopback", Selector: web, Ports: ports, Pods: []string{"web-5d9c-a", "web-5d9c-b"}}
	}
	tcp := func(from, to int32, procs ...string) Port {
		return Port{Protocol: "TCP", From: from, To: to, Processes: procs}
	}

	tests := []struct {
		name string
		in   Input
		want Result
	}{{
		name: "a Deployment's sidecar on loopback: one policy, contiguous ports merged, template labels as selector",
		in: Input{Pods: []corev1.Pod{web1, web2}, Owners: owners, Reports: []v1alpha1.NodeBindReport{
			report("n1", seen(web1, lo(15020, "sidecar"), lo(15021, "sidecar"), lo(15023, "sidecar"), wild(8080)),
				seen(web2, lo(15020, "sidecar"), lo(15022, "sidecar"))),
		}},
		want: Result{Proposals: []Proposal{webProposal(tcp(15020, 15023, "sidecar/listener"))}},
	}, {
		name: "a port on loopback in one replica and a wildcard in another is not loopback-only",
		in: Input{Pods: []corev1.Pod{web1, web2}, Owners: owners, Services: []corev1.Service{webSvc}, Reports: []v1alpha1.NodeBindReport{
			report("n1", seen(web1, lo(9090, "app"), lo(15000, "sidecar"))), report("n2", seen(web2, wild(9090))),
		}},
		want: Result{Proposals: []Proposal{webProposal(tcp(15000, 15000, "sidecar/listener"))}},
	}, {
		name: "wildcards: undeclared listed, a containerPort or a Service's targetPort declares",
		in: Input{Pods: []corev1.Pod{web1, exp}, Owners: owners, Services: []corev1.Service{webSvc}, Reports: []v1alpha1.NodeBindReport{
			report("n1", seen(web1, wild(8080), wild(9090), wild(9091)), seen(exp, wild(9100))),
		}},
		want: Result{Wildcards: []Wildcard{
			{Workload: Workload{"DaemonSet", ns, "exporter"}, Protocol: "TCP", Address: "0.0.0.0", Port: 9100, Processes: []string{"app/listener"}, Pods: []string{"exporter-x"}},
			{Workload: Workload{"Deployment", ns, "web"}, Protocol: "TCP", Address: "0.0.0.0", Port: 9091, Processes: []string{"app/listener"}, Pods: []string{"web-5d9c-a"}},
		}},
	}, {
		name: "a UDP listener on ::1 of a bare pod, a CronJob's pod, a pod without labels",
		in: Input{Pods: []corev1.Pod{bare, bk, unlabelled}, Owners: owners, Reports: []v1alpha1.NodeBindReport{
			report("n1", seen(bare, listener("UDP", v1alpha1.AddressClassLoopback, "::1", 5353, "app", "listener")),
				seen(bk, lo(7000, "app")), seen(unlabelled, lo(7001, "app"))),
		}},
		want: Result{Proposals: []Proposal{
			{Workload: Workload{"CronJob", ns, "backup"}, Name: "backup-loopback", Selector: map[string]string{"app": "backup"}, Ports: []Port{tcp(7000, 7000, "app/listener")}, Pods: []string{"backup-1-z"}},
			{Workload: Workload{"Pod", ns, "naked"}, Name: "naked-loopback", Selector: map[string]string{}, Ports: []Port{tcp(7001, 7001, "app/listener")}, Pods: []string{"naked"}},
			{Workload: Workload{"Pod", ns, "udp"}, Name: "udp-loopback", Selector: map[string]string{"app": "udp"}, Ports: []Port{{Protocol: "UDP", From: 5353, To: 5353, Processes: []string{"app/listener"}}}, Pods: []string{"udp"}},
		}},
	}, {
		name: "ports a policy protects are not proposed again; gone and hostNetwork pods are ignored; nodes without discovery listed",
		in: Input{
			Pods:   []corev1.Pod{web1, func() corev1.Pod { p := pod("host", web, nil); p.Spec.HostNetwork = true; return p }()},
			Owners: owners, Policies: []v1alpha1.LoopbackService{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
				Spec: v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{MatchLabels: web}, Ports: []v1alpha1.LoopbackPort{{Port: 15000, EndPort: ptr(int32(15001))}}}}},
			Reports: []v1alpha1.NodeBindReport{
				report("n1", seen(web1, lo(15000, "sidecar"), lo(15001, "sidecar")), seen(web2, lo(15002, "sidecar")),
					seen(func() corev1.Pod { p := pod("host", web, nil); p.Spec.HostNetwork = true; return p }(), lo(15003, "app"))),
				{ObjectMeta: metav1.ObjectMeta{Name: "n0"}},
			},
		},
		want: Result{NoDiscovery: []string{"n0"}},
	}, {
		name: "a selector that selects another workload's pods says so",
		in: Input{Pods: []corev1.Pod{web1, pod("canary", web, nil)}, Owners: owners, Reports: []v1alpha1.NodeBindReport{
			report("n1", seen(web1, lo(15000, "sidecar"))),
		}},
		want: Result{Proposals: []Proposal{{Workload: Workload{"Deployment", ns, "web"}, Name: "web-loopback", Selector: web,
			Ports: []Port{tcp(15000, 15000, "sidecar/listener")}, Pods: []string{"web-5d9c-a"}, Others: []string{"canary"}}}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Propose(tc.in)); diff != "" {
				t.Errorf("Propose (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyNames(t *testing.T) {
	used := map[string]bool{}
	a := policyName(Workload{"Deployment", ns, "web"}, used)
	b := policyName(Workload{"StatefulSet", ns, "web"}, used)
	c := policyName(Workload{"Deployment", "other", "web"}, used)
	if a != "web-loopback" || b != "statefulset-web-loopback" || c != "web-loopback" {
		t.Errorf("names %q %q %q", a, b, c)
	}
	// A workload named like another's kind-qualified name: applying the
	// proposals must not let one overwrite another.
	used = map[string]bool{}
	seen := map[string]bool{}
	for _, wl := range []Workload{{"Deployment", ns, "web"}, {"StatefulSet", ns, "web"}, {"Deployment", ns, "statefulset-web"}, {"DaemonSet", ns, "statefulset-web"}} {
		n := policyName(wl, used)
		if seen[n] {
			t.Errorf("%s %s gets the name %q of another proposal", wl.Kind, wl.Name, n)
		}
		seen[n] = true
	}
}

func ptr[T any](v T) *T { return &v }
