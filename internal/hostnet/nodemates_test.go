package hostnet

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/internal/podview"
)

// podOpt shapes a test pod.
type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app"}}}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// views are pods as the package takes them (podview.Of), in order.
func views(pods ...*corev1.Pod) []*podview.Pod {
	out := make([]*podview.Pod, len(pods))
	for i, p := range pods {
		out[i] = podview.Of(p)
	}
	return out
}

func privileged(p *corev1.Pod) {
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
}
func hostPID(p *corev1.Pod)     { p.Spec.HostPID = true }
func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }
func addCaps(caps ...corev1.Capability) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: caps}}
	}
}
func hostPathVol(path string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}})
	}
}
func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func TestNodeMateRisks(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want []Risk
	}{
		{"plain pod", pod("p"), nil},
		{"nil", nil, nil},
		{"privileged app container", pod("p", privileged),
			[]Risk{{RiskPrivileged, "spec.containers[0].securityContext.privileged", "privileged container app"}}},
		{"privileged false", pod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(false)}
		}), nil},
		{"privileged init container", pod("p", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}), []Risk{{RiskPrivileged, "spec.initContainers[0].securityContext.privileged", "privileged container init"}}},
		{"privileged ephemeral container", pod("p", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debugger", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
		}), []Risk{{RiskPrivileged, "spec.ephemeralContainers[0].securityContext.privileged", "privileged container debugger"}}},
		{"hostPID and SYS_PTRACE", pod("p", hostPID, addCaps("NET_BIND_SERVICE", "SYS_PTRACE")),
			[]Risk{{RiskHostPIDCapability, "spec.containers[0].securityContext.capabilities.add[1]", "hostPID and SYS_PTRACE in container app"}}},
		{"hostPID and CAP_SYS_ADMIN", pod("p", hostPID, addCaps("CAP_SYS_ADMIN")),
			[]Risk{{RiskHostPIDCapability, "spec.containers[0].securityContext.capabilities.add[0]", "hostPID and SYS_ADMIN in container app"}}},
		{"hostPID and ALL", pod("p", hostPID, addCaps("all")),
			[]Risk{{RiskHostPIDCapability, "spec.containers[0].securityContext.capabilities.add[0]", "hostPID and ALL in container app"}}},
		{"hostPID alone", pod("p", hostPID), nil},
		{"hostPID with NET_ADMIN only", pod("p", hostPID, addCaps("NET_ADMIN")), nil},
		{"SYS_PTRACE without hostPID", pod("p", addCaps("SYS_PTRACE")), nil},
		{"hostNetwork and NET_ADMIN", pod("p", hostNetwork, addCaps("NET_ADMIN")),
			[]Risk{{RiskHostNetworkNetAdmin, "spec.containers[0].securityContext.capabilities.add[0]", "hostNetwork and NET_ADMIN in container app"}}},
		{"hostNetwork alone (the hostNetwork report's business)", pod("p", hostNetwork), nil},
		{"NET_ADMIN without hostNetwork (its own namespace)", pod("p", addCaps("NET_ADMIN")), nil},
		{"privileged hostNetwork reported once", pod("p", hostNetwork, privileged),
			[]Risk{{RiskPrivileged, "spec.containers[0].securityContext.privileged", "privileged container app"}}},
		{"hostPath /proc", pod("p", hostPathVol("/proc")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /proc (volume v)"}}},
		{"hostPath /proc/1/ns", pod("p", hostPathVol("/proc/1/ns/")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /proc/1/ns/ (volume v)"}}},
		{"hostPath /", pod("p", hostPathVol("/")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath / (volume v)"}}},
		{"hostPath /var/run/netns", pod("p", hostPathVol("/var/run/netns")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /var/run/netns (volume v)"}}},
		{"hostPath /run/netns/cni-1", pod("p", hostPathVol("/run/netns/cni-1")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /run/netns/cni-1 (volume v)"}}},
		{"hostPath containerd socket", pod("p", hostPathVol("/run/containerd/containerd.sock")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /run/containerd/containerd.sock (volume v)"}}},
		{"hostPath /var/run/containerd", pod("p", hostPathVol("/var/run/containerd")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /var/run/containerd (volume v)"}}},
		{"hostPath docker socket", pod("p", hostPathVol("/var/run/docker.sock")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /var/run/docker.sock (volume v)"}}},
		{"hostPath crio socket", pod("p", hostPathVol("/run/crio/crio.sock")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /run/crio/crio.sock (volume v)"}}},
		{"hostPath /var/run/crio", pod("p", hostPathVol("/var/run/crio")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /var/run/crio (volume v)"}}},
		{"hostPath /run (above the sockets)", pod("p", hostPathVol("/run")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /run (volume v)"}}},
		{"hostPath /var/run/ (trailing slash)", pod("p", hostPathVol("/var/run/")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /var/run/ (volume v)"}}},
		{"hostPath /run/../proc", pod("p", hostPathVol("/run/../proc")),
			[]Risk{{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /run/../proc (volume v)"}}},
		{"hostPath /var/log is harmless here", pod("p", hostPathVol("/var/log")), nil},
		{"hostPath /processes (a prefix, not the tree)", pod("p", hostPathVol("/processes")), nil},
		{"hostPath /run/containerd-other", pod("p", hostPathVol("/run/containerd-other")), nil},
		{"several", pod("p", hostPID, hostPathVol("/proc"), func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers,
				corev1.Container{Name: "tracer", SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}},
				corev1.Container{Name: "root", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}})
		}), []Risk{
			{RiskHostPIDCapability, "spec.containers[1].securityContext.capabilities.add[0]", "hostPID and SYS_PTRACE in container tracer"},
			{RiskPrivileged, "spec.containers[2].securityContext.privileged", "privileged container root"},
			{RiskHostPath, "spec.volumes[0].hostPath.path", "hostPath /proc (volume v)"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var spec *corev1.PodSpec // nil for the nil case: NodeMateRisks(nil) is none
			if tc.pod != nil {
				spec = &tc.pod.Spec
			}
			if got := NodeMateRisks(spec); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NodeMateRisks:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestNodeMates(t *testing.T) {
	isProtected := func(p *podview.Pod) bool { return p.Labels["app"] == "cart" }
	cart := func(name string, opts ...podOpt) *corev1.Pod {
		p := pod(name, opts...)
		p.Labels = map[string]string{"app": "cart"}
		return p
	}
	finished := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		want []string // namespace/name@node: protected
	}{
		{"privileged pod beside a protected one", []*corev1.Pod{cart("cart-0"), pod("debug", privileged)},
			[]string{"ns/debug@n1: [ns/cart-0]"}},
		{"on another node", []*corev1.Pod{cart("cart-0"), pod("debug", privileged, onNode("n2"))}, nil},
		{"unscheduled", []*corev1.Pod{cart("cart-0"), pod("debug", privileged, onNode(""))}, nil},
		{"no protected pod on the node", []*corev1.Pod{pod("other"), pod("debug", privileged)}, nil},
		{"protected pod finished", []*corev1.Pod{cart("cart-0", finished), pod("debug", privileged)}, nil},
		{"risky pod being deleted", []*corev1.Pod{cart("cart-0"), pod("debug", privileged, deleting)}, nil},
		{"a risky protected pod is a node-mate of the others, not of itself",
			[]*corev1.Pod{cart("cart-0", privileged), cart("cart-1")},
			[]string{"ns/cart-0@n1: [ns/cart-1]"}},
		{"alone and risky", []*corev1.Pod{cart("cart-0", privileged)}, nil},
		{"sorted, several protected", []*corev1.Pod{cart("cart-1"), pod("z", hostPathVol("/proc")), cart("cart-0"), pod("a", hostPID, addCaps("SYS_ADMIN"))},
			[]string{"ns/a@n1: [ns/cart-0 ns/cart-1]", "ns/z@n1: [ns/cart-0 ns/cart-1]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			pods := views(tc.pods...)
			for _, m := range NodeMates(pods, pods, isProtected) {
				if len(m.Risks) == 0 {
					t.Errorf("%s/%s reported without a risk", m.Namespace, m.Name)
				}
				got = append(got, m.Namespace+"/"+m.Name+"@"+m.Node+": "+sprint(m.Protected))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NodeMates:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func sprint(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
