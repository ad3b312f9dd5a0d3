package podview_test

import (
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/hostnet"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// oldPodIPs is rules.PodIPs as it was on a corev1.Pod before the rules
// took podview.Pods: none for a hostNetwork pod, one being deleted or one
// that has finished; else status.podIPs, canonical, falling back to
// status.podIP when none of them parses.
func oldPodIPs(p *corev1.Pod) []string {
	if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	var out []string
	for _, ip := range p.Status.PodIPs {
		if a, ok := rules.CanonicalIP(ip.IP); ok {
			out = append(out, a)
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if a, ok := rules.CanonicalIP(p.Status.PodIP); ok {
			out = append(out, a)
		}
	}
	return out
}

// TestOfAndFromPodKeepWhatTheRulesRead: for pods of every shape the rules
// tell apart, the podview.Pod of a pod, by Of (the CLI's files, tests) and
// by the cache's transform, is judged as the pod itself was before the
// migration: the same IPs (rules.PodIPs against the old rule on the
// corev1.Pod), the same findings with the same field paths (through
// rules.PodTemplateOf and rules.Evaluate), the same node-mate risks; the
// node is NodeName and never the spec's. From takes either type.
func TestOfAndFromPodKeepWhatTheRulesRead(t *testing.T) {
	pol, err := rules.Compile(&v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy-admin"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			// Some of the pods' ports: 15000, 6060-6069 and 5353/UDP, not
			// 8080 nor 5353/TCP.
			Ports: []v1alpha1.LoopbackPort{{Port: 15000}, {Port: 6060, EndPort: ptr.To[int32](6069)},
				{Port: 5353, Protocol: corev1.ProtocolUDP}},
			HostNetwork: v1alpha1.HostNetworkAudit,
		}})
	if err != nil {
		t.Fatal(err)
	}
	env := rules.NewEnv("shop", nil, rules.NewSet([]*rules.Policy{pol}))
	// A Service that targets the protected port by name: the pod side of
	// the Service rule (EvaluatePodServices) reads the pod's ports too.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "cart"},
			Ports: []corev1.ServicePort{{Name: "admin", Port: 80, TargetPort: intstr.FromString("admin")}}}}
	cluster := rules.Cluster{Services: []*corev1.Service{svc}}

	pod := func(name string, mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7",
				Labels: map[string]string{"app": "cart", "pod-template-hash": "5d9c"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-5d9c",
					UID: "uid-rs", Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{
				{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 15000}}},
				{Name: "envoy", Ports: []corev1.ContainerPort{{ContainerPort: 6065, HostPort: 16065},
					{ContainerPort: 5353, Protocol: corev1.ProtocolUDP}, {ContainerPort: 5353, Protocol: corev1.ProtocolTCP}}},
			}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}}},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	cases := []struct {
		name string
		pod  *corev1.Pod
		// ips: what the old rule gives (checked against oldPodIPs too,
		// so that a case cannot test nothing).
		ips []string
		// fields the findings must include besides the containers'.
		fields []string
		risky  bool
	}{
		{name: "plain: podIPs lists podIP", pod: pod("plain", nil), ips: []string{"10.244.1.7"}},
		{name: "no podIPs list, podIP only", pod: pod("ip-only", func(p *corev1.Pod) { p.Status.PodIPs = nil }), ips: []string{"10.244.1.7"}},
		{name: "dual-stack", pod: pod("dual", func(p *corev1.Pod) {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00:10:244:1::7"})
		}), ips: []string{"10.244.1.7", "fd00:10:244:1::7"}},
		{name: "dual-stack, IPv6 first and not canonical", pod: pod("dual6", func(p *corev1.Pod) {
			p.Status.PodIP = "fd00:10:244:1:0:0:0:7"
			p.Status.PodIPs = []corev1.PodIP{{IP: "fd00:10:244:1:0:0:0:7"}, {IP: "10.244.1.7"}}
		}), ips: []string{"fd00:10:244:1::7", "10.244.1.7"}},
		{name: "one podIPs entry other than podIP", pod: pod("other-ip", func(p *corev1.Pod) {
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.1.8"}}
		}), ips: []string{"10.244.1.8"}},
		{name: "unparseable podIPs: podIP", pod: pod("bad-ip", func(p *corev1.Pod) {
			p.Status.PodIPs = []corev1.PodIP{{IP: "not-an-ip"}}
		}), ips: []string{"10.244.1.7"}},
		{name: "pending, no IP yet", pod: pod("pending", func(p *corev1.Pod) {
			p.Spec.NodeName, p.Status = "", corev1.PodStatus{Phase: corev1.PodPending}
		})},
		{name: "hostNetwork: the node's IP", pod: pod("host", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Status.PodIP, p.Status.PodIPs = "172.16.0.1", []corev1.PodIP{{IP: "172.16.0.1"}}
		}), fields: []string{"spec.hostNetwork"}},
		{name: "terminating", pod: pod("leaving", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} })},
		{name: "failed", pod: pod("failed", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })},
		{name: "succeeded", pod: pod("done", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
		{name: "init, sidecar and ephemeral containers", pod: pod("debugged", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{
				{Name: "warmup", Ports: []corev1.ContainerPort{{ContainerPort: 6061}}},
				{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 15000}}},
			}
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Ports: []corev1.ContainerPort{{ContainerPort: 6062}},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
		}), ips: []string{"10.244.1.7"}, risky: true, fields: []string{
			"spec.initContainers[0].ports[0].containerPort", "spec.initContainers[1].ports[1].containerPort",
			"spec.ephemeralContainers[0].ports[0].containerPort"}},
		{name: "an ephemeral container alone", pod: pod("attached", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Ports: []corev1.ContainerPort{{ContainerPort: 6062}},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
		}), ips: []string{"10.244.1.7"}, risky: true, fields: []string{"spec.ephemeralContainers[0].ports[0].containerPort"}},
		{name: "hostPath volume", pod: pod("mounts", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cart"}}}},
				{Name: "sock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/containerd/containerd.sock"}}},
			}
		}), ips: []string{"10.244.1.7"}, risky: true},
	}
	transform := podview.NewTransform()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod
			node := p.Spec.NodeName
			if old := oldPodIPs(p); !slices.Equal(old, tc.ips) {
				t.Fatalf("the old rule gives %v, the case says %v", old, tc.ips)
			}
			want, ok := rules.PodTemplateOf(p)
			if !ok {
				t.Fatal("PodTemplateOf(*corev1.Pod) = false")
			}
			wantFindings := rules.EvaluatePod(env, want)
			wantAll := rules.Evaluate(env, p, cluster)
			var wantFields []string
			for _, f := range wantFindings {
				wantFields = append(wantFields, f.Field)
			}
			for _, f := range append([]string{"spec.containers[0].ports[1].containerPort", "spec.containers[1].ports[0].containerPort",
				"spec.containers[1].ports[1].containerPort"}, tc.fields...) {
				if !slices.Contains(wantFields, f) {
					t.Fatalf("the pod's findings lack %s: %v", f, wantFields)
				}
			}
			if len(wantAll) <= len(wantFindings) {
				t.Fatalf("no Service finding to compare: %v", messages(wantAll))
			}
			wantRisks := hostnet.NodeMateRisks(&p.Spec)
			if risky := len(wantRisks) > 0; risky != tc.risky {
				t.Fatalf("node-mate risks %v, the case says risky %v", wantRisks, tc.risky)
			}

			trimmed, err := transform(p.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			views := map[string]*podview.Pod{"Of": podview.Of(p), "NewTransform": trimmed.(*podview.Pod)}
			for _, by := range []string{"Of", "NewTransform"} {
				v := views[by]
				if got := rules.PodIPs(v); !slices.Equal(got, tc.ips) {
					t.Errorf("%s: rules.PodIPs %v, want %v", by, got, tc.ips)
				}
				wantIPs := p.Status.PodIPs
				if len(wantIPs) == 0 && p.Status.PodIP != "" {
					wantIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
				}
				if got := v.IPs(); !reflect.DeepEqual(got, wantIPs) && !(len(got) == 0 && len(wantIPs) == 0) {
					t.Errorf("%s: IPs() %v, want %v", by, got, wantIPs)
				}
				if v.NodeName != node || v.TrimmedSpec.NodeName != "" {
					t.Errorf("%s: NodeName %q, TrimmedSpec.NodeName %q; want %q and none", by, v.NodeName, v.TrimmedSpec.NodeName, node)
				}
				if v.Namespace != p.Namespace || v.Name != p.Name || v.UID != p.UID || v.ResourceVersion != p.ResourceVersion ||
					!reflect.DeepEqual(v.Labels, p.Labels) || !reflect.DeepEqual(v.OwnerReferences, p.OwnerReferences) ||
					!v.DeletionTimestamp.Equal(p.DeletionTimestamp) || v.Phase != p.Status.Phase || v.PodIP != p.Status.PodIP {
					t.Errorf("%s: metadata or status differs: %+v", by, v)
				}
				got, ok := rules.PodTemplateOf(v)
				if !ok {
					t.Fatalf("%s: PodTemplateOf(*podview.Pod) = false", by)
				}
				if gotFindings := rules.EvaluatePod(env, got); !reflect.DeepEqual(gotFindings, wantFindings) {
					t.Errorf("%s: EvaluatePod\n%v\nwant\n%v", by, messages(gotFindings), messages(wantFindings))
				}
				if gotAll := rules.Evaluate(env, v, cluster); !reflect.DeepEqual(gotAll, wantAll) {
					t.Errorf("%s: Evaluate\n%v\nwant\n%v", by, messages(gotAll), messages(wantAll))
				}
				if got := hostnet.NodeMateRisks(v.TrimmedSpec); !reflect.DeepEqual(got, wantRisks) {
					t.Errorf("%s: node-mate risks %v, want %v", by, got, wantRisks)
				}
			}
			// Of leaves the pod as it was (its node name included).
			if p.Spec.NodeName != node || !reflect.DeepEqual(views["Of"].TrimmedSpec, func() *corev1.PodSpec {
				s := p.Spec
				s.NodeName = ""
				return &s
			}()) {
				t.Errorf("Of: the pod's spec is not the view's with the node name: %q", p.Spec.NodeName)
			}

			// From: a Pod as it is, a corev1.Pod through Of.
			v := views["Of"]
			if got, ok := podview.From(v); !ok || got != v {
				t.Errorf("From(*podview.Pod) = %p, %v; want the same pointer %p", got, ok, v)
			}
			if got, ok := podview.From(p); !ok || got == nil || !reflect.DeepEqual(got, podview.Of(p)) {
				t.Errorf("From(*corev1.Pod) = %+v, %v; want Of's", got, ok)
			}
		})
	}
	for _, obj := range []any{svc, (*corev1.Pod)(nil), (*podview.Pod)(nil), nil, corev1.Pod{}} {
		if got, ok := podview.From(obj); ok || got != nil {
			t.Errorf("From(%T) = %v, %v; want nil, false", obj, got, ok)
		}
	}
}
