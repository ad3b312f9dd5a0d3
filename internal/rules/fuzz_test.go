package rules_test

import (
	"fmt"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// FuzzReviewPodAgainstReference: random LoopbackServices and a random pod,
// and rules.Review's decision (action, number of findings) and rules.Evaluate's
// findings (field, policies, action) against a brute-force reference that
// checks each declared port against each port of each range of each policy
// whose matchLabels the pod carries. Ports, labels and protocols come from
// small sets so that policies overlap and ranges touch.
func FuzzReviewPodAgainstReference(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0})                                     // one port 15000: the default policy's
	f.Add([]byte{1, 0, 1, 2, 0, 0, 3, 2, 1, 1, 1, 1, 3, 0, 1, 1, 1, 0}) // containers, an init sidecar
	f.Add([]byte{1, 1, 0, 3, 1, 0, 2, 2, 5, 1, 0, 1, 1, 2, 1, 1, 2, 0, 3, 1, 0, 1, 2, 1, 0, 2, 2, 1, 0, 3, 3, 1, 1, 1, 1, 0, 0, 2, 3, 0, 0, 4})
	f.Add([]byte{2, 2, 2, 3, 4, 1, 5, 2, 6, 3, 3, 3, 1, 0, 7, 0, 1, 1, 1, 9, 2, 4, 2, 1, 1, 0, 0, 0, 5, 4, 2, 2, 1, 0, 6, 1, 4, 3, 3, 1, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &byteReader{data: data}
		// The pod first: the bytes left after it make the policies, and
		// none left make one that selects every pod and protects 15000/TCP.
		pod := genPod(in)
		lbss := genPolicies(in)
		var compiled []*rules.Policy
		var valid []*v1alpha1.LoopbackService
		for _, lbs := range lbss {
			p, err := rules.Compile(lbs)
			if err != nil {
				continue // the API server's validation refuses these
			}
			compiled, valid = append(compiled, p), append(valid, lbs)
		}
		env := &rules.Env{Namespace: "shop", Sets: []*rules.Set{rules.NewSet(compiled)}}

		want := referenceFindings(valid, pod)
		got := map[string]refFinding{}
		for _, fd := range rules.Evaluate(env, pod, rules.Cluster{}) {
			var names []string
			for _, r := range fd.Policies {
				names = append(names, r.Name)
			}
			sort.Strings(names)
			if _, dup := got[fd.Field]; dup {
				t.Errorf("two findings at %s", fd.Field)
			}
			got[fd.Field] = refFinding{policies: fmt.Sprint(names), action: fd.Action}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Evaluate disagrees with the reference\npolicies: %s\npod: %s\n got %v\nwant %v", dump(valid), dump(pod), got, want)
		}

		d := rules.Review(rules.ReviewRequest{Operation: rules.OperationCreate, Object: pod}, rules.Snapshot{Env: env})
		var action v1alpha1.EnforcementAction
		for _, w := range want {
			action = stricter(action, w.action)
		}
		if d.Action != action || len(d.Findings)+d.Omitted != len(want) {
			t.Fatalf("Review: action %q, %d findings + %d omitted; the reference: %q, %d findings\npolicies: %s\npod: %s",
				d.Action, len(d.Findings), d.Omitted, action, len(want), dump(valid), dump(pod))
		}
	})
}

type refFinding struct {
	policies string
	action   v1alpha1.EnforcementAction
}

func (f refFinding) String() string { return f.policies + ":" + string(f.action) }

// referenceFindings is the rule said simply: a declared port of any
// container is a finding when a policy selecting the pod lists that
// port/protocol in one of its ranges, visited port by port.
func referenceFindings(policies []*v1alpha1.LoopbackService, pod *corev1.Pod) map[string]refFinding {
	out := map[string]refFinding{}
	visit := func(path string, ports []corev1.ContainerPort) {
		for j, cp := range ports {
			proto := protocolOr(cp.Protocol)
			var names []string
			var action v1alpha1.EnforcementAction
			for _, lbs := range policies {
				if !carries(pod.Labels, lbs.Spec.PodSelector.MatchLabels) {
					continue
				}
				protected := false
				for _, r := range lbs.Spec.Ports {
					end := r.Port
					if r.EndPort != nil {
						end = *r.EndPort
					}
					for p := r.Port; p <= end && !protected; p++ {
						protected = p == cp.ContainerPort && protocolOr(r.Protocol) == proto
					}
				}
				if protected {
					names = append(names, lbs.Name)
					a := lbs.Spec.EnforcementAction
					if a == "" {
						a = v1alpha1.ActionDeny
					}
					action = stricter(action, a)
				}
			}
			if len(names) > 0 {
				sort.Strings(names)
				out[fmt.Sprintf("%s.ports[%d].containerPort", path, j)] = refFinding{policies: fmt.Sprint(names), action: action}
			}
		}
	}
	for i, c := range pod.Spec.Containers {
		visit(fmt.Sprintf("spec.containers[%d]", i), c.Ports)
	}
	for i, c := range pod.Spec.InitContainers {
		visit(fmt.Sprintf("spec.initContainers[%d]", i), c.Ports)
	}
	for i, c := range pod.Spec.EphemeralContainers {
		visit(fmt.Sprintf("spec.ephemeralContainers[%d]", i), c.Ports)
	}
	return out
}

// stricter is rules.Stricter from no action yet (which Stricter ranks
// like Deny, the default).
func stricter(a, b v1alpha1.EnforcementAction) v1alpha1.EnforcementAction {
	if a == "" {
		return b
	}
	return rules.Stricter(a, b)
}

func protocolOr(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func carries(have, want map[string]string) bool {
	for k, v := range want {
		if w, ok := have[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// byteReader hands out the fuzzer's bytes, then zeros.
type byteReader struct {
	data []byte
	i    int
}

func (r *byteReader) next(n int) int {
	if r.i >= len(r.data) {
		return 0
	}
	b := r.data[r.i]
	r.i++
	return int(b) % n
}

var (
	labelKeys   = []string{"app", "tier"}
	labelValues = []string{"cart", "web"}
	protocols   = []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	actions     = []v1alpha1.EnforcementAction{"", v1alpha1.ActionDeny, v1alpha1.ActionWarn, v1alpha1.ActionAudit}
)

// port is one of 15000..15011 (ranges overlap and touch often).
func port(in *byteReader) int32 { return 15000 + int32(in.next(12)) }

func genLabels(in *byteReader) map[string]string {
	m := map[string]string{}
	for _, k := range labelKeys {
		if v := in.next(3); v > 0 {
			m[k] = labelValues[v-1]
		}
	}
	return m
}

func genPolicies(in *byteReader) []*v1alpha1.LoopbackService {
	var out []*v1alpha1.LoopbackService
	for i := range 1 + in.next(5) {
		lbs := &v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "shop"},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector:       metav1.LabelSelector{MatchLabels: genLabels(in)},
				EnforcementAction: actions[in.next(len(actions))],
			},
		}
		for range 1 + in.next(3) {
			lp := v1alpha1.LoopbackPort{Port: port(in), Protocol: protocols[in.next(len(protocols))]}
			if w := in.next(5); w > 0 {
				end := lp.Port + int32(w-1)
				lp.EndPort = &end
			}
			lbs.Spec.Ports = append(lbs.Spec.Ports, lp)
		}
		out = append(out, lbs)
	}
	return out
}

func genPod(in *byteReader) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod", Namespace: "shop", Labels: genLabels(in)}}
	ports := func() []corev1.ContainerPort {
		var ps []corev1.ContainerPort
		for range in.next(4) {
			ps = append(ps, corev1.ContainerPort{ContainerPort: port(in), Protocol: protocols[in.next(len(protocols))]})
		}
		return ps
	}
	for i := range 1 + in.next(3) {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Ports: ports()})
	}
	for i := range in.next(2) {
		c := corev1.Container{Name: fmt.Sprintf("i%d", i), Ports: ports()}
		if in.next(2) == 1 {
			always := corev1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
	}
	for i := range in.next(2) {
		pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: fmt.Sprintf("e%d", i), Ports: ports()}})
	}
	return pod
}

func dump(v any) string {
	switch o := v.(type) {
	case []*v1alpha1.LoopbackService:
		var s []string
		for _, l := range o {
			s = append(s, fmt.Sprintf("%s%v %s %s", l.Name, l.Spec.PodSelector.MatchLabels, l.Spec.EnforcementAction, portsOf(l.Spec.Ports)))
		}
		return fmt.Sprint(s)
	case runtime.Object:
		pod := o.(*corev1.Pod)
		s := fmt.Sprint(pod.Labels)
		for _, c := range pod.Spec.Containers {
			s += fmt.Sprintf(" %s%v", c.Name, c.Ports)
		}
		for _, c := range pod.Spec.InitContainers {
			s += fmt.Sprintf(" init %s%v", c.Name, c.Ports)
		}
		for _, c := range pod.Spec.EphemeralContainers {
			s += fmt.Sprintf(" ephemeral %s%v", c.Name, c.Ports)
		}
		return s
	}
	return fmt.Sprint(v)
}

func portsOf(ps []v1alpha1.LoopbackPort) string {
	var s []string
	for _, p := range ps {
		end := p.Port
		if p.EndPort != nil {
			end = *p.EndPort
		}
		s = append(s, fmt.Sprintf("%d-%d/%s", p.Port, end, p.Protocol))
	}
	return fmt.Sprint(s)
}
