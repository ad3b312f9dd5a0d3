package rules

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loopguard/loopguard/internal/podview"
)

// maxPodsInMessage bounds the pods a Service message lists by name.
const maxPodsInMessage = 3

// inScope reports whether a Service can route to pods: ExternalName
// Services and Services without a selector are out of scope.
func inScope(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && len(svc.Spec.Selector) > 0
}

// target is the effective target of a Service port: targetPort, or port
// when targetPort is unset.
type target struct {
	number    int32  // numeric target, 0 when named
	name      string // named target
	field     string // path of the field that decides the target
	defaulted bool   // targetPort unset: the target is the port itself
}

func effectiveTarget(sp *corev1.ServicePort, path *field.Path) target {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		return target{name: sp.TargetPort.StrVal, field: path.Child("targetPort").String()}
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return target{number: sp.TargetPort.IntVal, field: path.Child("targetPort").String()}
	default:
		return target{number: sp.Port, field: path.Child("port").String(), defaulted: true}
	}
}

func (t target) String() string {
	desc := fmt.Sprintf("targets port %d", t.number)
	if t.name != "" {
		desc = fmt.Sprintf("targets the port named %q", t.name)
	}
	if t.defaulted {
		desc += " (targetPort unset, so it defaults to port)"
	}
	return desc
}

// hit is one protected port that a Service port reaches on a pod.
type hit struct {
	policy *Policy
	port   int32
}

// portNames resolves port names on one pod (template). A pod with few
// ports is scanned; one with more than scanPorts is indexed by name and
// protocol on first use, once per pod, so a Service with 20,000 named
// ports against pods with 20,000 ports each costs 20,000 lookups per pod,
// not 400 million comparisons.
type portNames struct {
	spec  *corev1.PodSpec
	index map[namedPort][]int32
	// cost is the container ports indexed, 0 until the index is built;
	// scanned is whether spec has few enough ports to scan.
	cost    int
	scanned bool
}

// scanPorts is the number of container ports up to which a pod is scanned
// rather than indexed.
const scanPorts = 32

type namedPort struct {
	name     string
	protocol corev1.Protocol
}

func newPortNames(spec *corev1.PodSpec) *portNames {
	n := 0
	if spec != nil {
		eachContainerPorts(spec, func(ports []corev1.ContainerPort) { n += len(ports) })
	}
	return &portNames{spec: spec, scanned: n <= scanPorts}
}

// eachContainerPorts calls fn with the ports of every container of spec.
func eachContainerPorts(spec *corev1.PodSpec, fn func([]corev1.ContainerPort)) {
	for i := range spec.Containers {
		fn(spec.Containers[i].Ports)
	}
	for i := range spec.InitContainers {
		fn(spec.InitContainers[i].Ports)
	}
	for i := range spec.EphemeralContainers {
		fn(spec.EphemeralContainers[i].Ports)
	}
}

// resolve calls fn with each containerPort named name with this protocol,
// charging b for the index the first time one is built.
func (n *portNames) resolve(name string, proto corev1.Protocol, b *budget, fn func(int32)) {
	if n == nil || n.spec == nil {
		return
	}
	if n.scanned {
		eachContainerPorts(n.spec, func(ports []corev1.ContainerPort) {
			for _, cp := range ports {
				if cp.Name == name && defaultProtocol(cp.Protocol) == proto {
					fn(cp.ContainerPort)
				}
			}
		})
		return
	}
	if n.index == nil {
		n.index = map[namedPort][]int32{}
		eachContainerPorts(n.spec, func(ports []corev1.ContainerPort) {
			n.cost += len(ports)
			for _, cp := range ports {
				if cp.Name != "" {
					k := namedPort{cp.Name, defaultProtocol(cp.Protocol)}
					n.index[k] = append(n.index[k], cp.ContainerPort)
				}
			}
		})
		b.spend(n.cost)
	}
	for _, port := range n.index[namedPort{name, proto}] {
		fn(port)
	}
}

// targetHits resolves a Service port's target against one pod (labels and,
// when known, its named ports) and returns the protected ports it reaches.
// selects decides whether a policy protects that pod.
func targetHits(env *Env, t target, proto corev1.Protocol, names *portNames, b *budget, selects func(*Policy) bool) []hit {
	var hits []hit
	add := func(p *Policy, port int32) {
		if selects(p) {
			hits = append(hits, hit{p, port})
		}
	}
	if t.name == "" {
		env.covering(proto, t.number, func(p *Policy, _ PortRange) { add(p, t.number) })
		return hits
	}
	// A name resolves to the pod's containerPort of that name; a policy
	// that names the port protects the name itself.
	names.resolve(t.name, proto, b, func(port int32) {
		env.covering(proto, port, func(p *Policy, _ PortRange) { add(p, port) })
	})
	env.naming(t.name, proto, func(p *Policy, r PortRange) { add(p, r.From) })
	return hits
}

// serviceReach is what one Service port reaches of one policy's pods: the
// port, the existing pods (sorted), the workloads whose templates it
// selects, and whether its selector implies the policy's (every pod it can
// select).
type serviceReach struct {
	port      int32
	pods      []string
	templates []string
	implied   bool
}

// within reports whether r reaches nothing that o does not.
func (r *serviceReach) within(o *serviceReach) bool {
	if r == nil || o == nil {
		return r == o
	}
	return (!r.implied || o.implied) && sortedSubset(r.pods, o.pods) && sortedSubset(r.templates, o.templates)
}

// sortedSubset reports whether every element of sorted a is in sorted b.
func sortedSubset(a, b []string) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

// selectedMember is a pod, or a workload's pod template, that a Service
// selects, with its named ports indexed on first use.
type selectedMember struct {
	pod      string // the pod's name; "" for a template
	template string // "deployment cart" for a template
	labels   labels.Set
	spec     *corev1.PodSpec
	names    *portNames
}

// EvaluateService finds the ports of a Service that reach a protected port
// of a pod it selects: an existing pod among pods (the namespace's pods; the
// function checks selection itself), a pod a workload among workloads would
// create (its template), or any pod at all when the Service's selector
// implies a policy's podSelector.
func EvaluateService(env *Env, svc *corev1.Service, pods []*podview.Pod, workloads ...runtime.Object) []Finding {
	return evaluateService(env, svc, pods, workloads, nil)
}

// evaluateService is EvaluateService within a budget: it stops, with what
// it found so far, when b runs out.
func evaluateService(env *Env, svc *corev1.Service, pods []*podview.Pod, workloads []runtime.Object, b *budget) []Finding {
	if env.Empty() || !inScope(svc) {
		return nil
	}
	obj := ObjectRef{Kind: "Service", Namespace: svc.Namespace, Name: objectName(svc.Name, svc.GenerateName)}
	var members []*selectedMember
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && selectorMatches(svc.Spec.Selector, pod.Labels) {
			members = append(members, &selectedMember{pod: pod.Name, labels: pod.Labels, spec: pod.TrimmedSpec})
		}
	}
	// Sorted by name, each reach lists its pods in order.
	slices.SortFunc(members, func(a, b *selectedMember) int { return strings.Compare(a.pod, b.pod) })
	for _, w := range workloads {
		tmpl, ok := PodTemplateOf(w)
		if !ok || tmpl.Object.Kind == "Pod" || !selectorMatches(svc.Spec.Selector, tmpl.Labels) {
			continue
		}
		members = append(members, &selectedMember{template: strings.ToLower(tmpl.Object.Kind) + " " + tmpl.Object.Name, labels: tmpl.Labels, spec: tmpl.Spec})
	}
	var c collector
	for i := range svc.Spec.Ports {
		if !b.spend(1 + len(members)) {
			return c.findings
		}
		sp := &svc.Spec.Ports[i]
		proto := defaultProtocol(sp.Protocol)
		t := effectiveTarget(sp, field.NewPath("spec", "ports").Index(i))
		reached := map[*Policy]*serviceReach{}
		var order []*Policy
		note := func(h hit, m *selectedMember, implied bool) {
			r := reached[h.policy]
			if r == nil {
				r = &serviceReach{port: h.port}
				reached[h.policy] = r
				order = append(order, h.policy)
			}
			switch {
			case m == nil:
			case m.pod != "" && (len(r.pods) == 0 || r.pods[len(r.pods)-1] != m.pod):
				r.pods = append(r.pods, m.pod)
			case m.template != "":
				r.templates = append(r.templates, m.template)
			}
			r.implied = r.implied || implied
		}
		for _, m := range members {
			if m.names == nil {
				m.names = newPortNames(m.spec)
			}
			hits := targetHits(env, t, proto, m.names, b, func(p *Policy) bool { return p.Selector.Matches(m.labels) })
			b.spend(len(hits))
			for _, h := range hits {
				note(h, m, false)
			}
		}
		for _, h := range targetHits(env, t, proto, nil, b, func(p *Policy) bool { return p.SelectsOnlyProtected(svc.Spec.Selector) }) {
			note(h, nil, true)
		}
		for _, p := range order {
			r := reached[p]
			slices.Sort(r.templates)
			r.templates = slices.Compact(r.templates)
			f := Finding{
				Object: obj, Field: t.field, Reason: ReasonServiceTarget, Port: r.port, Protocol: proto, reach: r,
				format: fmt.Sprintf("port %s at %s %s, which reaches %d/%s on %s; that port is declared loopback-only by \x00policies\x00; target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod",
					servicePortName(sp), t.field, t, r.port, proto, describePods(r.pods, r.templates, r.implied)),
			}
			c.add(f, p, p.Action)
		}
	}
	return c.findings
}

// EvaluatePodServices is the pod side of the Service race: existing
// Services that select the pod (template) and reach one of its protected
// ports. A pod whose new labels make an old Service reach a protected port
// is refused just like the Service would have been.
func EvaluatePodServices(env *Env, pod PodTemplate, services []*corev1.Service) []Finding {
	return evaluatePodServices(env, pod, services, nil)
}

func evaluatePodServices(env *Env, pod PodTemplate, services []*corev1.Service, b *budget) []Finding {
	if env.Empty() || pod.Spec == nil {
		return nil
	}
	podLabels := labels.Set(pod.Labels)
	selects := func(p *Policy) bool { return p.Selector.Matches(podLabels) }
	names := newPortNames(pod.Spec)
	var c collector
	for _, svc := range services {
		if !inScope(svc) || !selectorMatches(svc.Spec.Selector, podLabels) {
			continue
		}
		for i := range svc.Spec.Ports {
			if !b.spend(1) {
				return c.findings
			}
			sp := &svc.Spec.Ports[i]
			proto := defaultProtocol(sp.Protocol)
			t := effectiveTarget(sp, field.NewPath("spec", "ports").Index(i))
			onWhat, selectWhat := "this pod", "the pod"
			if pod.Object.Kind != "Pod" {
				onWhat, selectWhat = "its pods", "its pods"
			}
			for _, h := range targetHits(env, t, proto, names, b, selects) {
				f := Finding{
					Object: pod.Object, Field: labelsPath(pod.SpecPath), Reason: ReasonSelectedByService,
					Port: h.port, Protocol: proto, Related: "service/" + svc.Name,
					format: fmt.Sprintf("is selected by service %q, whose port %s at %s %s and so reaches %d/%s on %s; that port is declared loopback-only by \x00policies\x00; change the labels at %s so the Service does not select %s, or fix the Service",
						svc.Name, servicePortName(sp), t.field, t, h.port, proto, onWhat, labelsPath(pod.SpecPath), selectWhat),
				}
				c.add(f, h.policy, h.policy.Action)
			}
		}
	}
	return c.findings
}

// labelsPath is the path of the labels that belong to the spec at specPath:
// metadata.labels for a Pod, spec.template.metadata.labels for a workload.
func labelsPath(specPath *field.Path) string {
	s := specPath.String()
	return strings.TrimSuffix(s, "spec") + "metadata.labels"
}

func servicePortName(sp *corev1.ServicePort) string {
	if sp.Name != "" {
		return fmt.Sprintf("%q (%d)", sp.Name, sp.Port)
	}
	return fmt.Sprintf("%d", sp.Port)
}

// describePods names the pods (sorted), templates (sorted, unique) and
// implied reach of a Service port.
func describePods(pods, templates []string, implied bool) string {
	var parts []string
	if len(pods) > 0 {
		shown := pods
		if len(shown) > maxPodsInMessage {
			shown = shown[:maxPodsInMessage]
		}
		s := "pods " + strings.Join(shown, ", ")
		if len(pods) == 1 {
			s = "pod " + pods[0]
		}
		if n := len(pods) - len(shown); n > 0 {
			s += fmt.Sprintf(" and %d more", n)
		}
		parts = append(parts, s)
	}
	if len(templates) > 0 {
		s := "the pods of " + strings.Join(templates[:min(len(templates), maxPodsInMessage)], ", ")
		if n := len(templates) - maxPodsInMessage; n > 0 {
			s += fmt.Sprintf(" and %d more", n)
		}
		parts = append(parts, s)
	}
	if implied {
		parts = append(parts, "every pod its selector can select")
	}
	return strings.Join(parts, ", and ")
}

func objectName(name, generateName string) string {
	if name == "" && generateName != "" {
		return generateName + "*"
	}
	return name
}
