package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
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

// targetHits resolves a Service port's target against one pod (labels and,
// when known, spec) and returns the protected ports it reaches. selects
// decides whether a policy protects that pod.
func targetHits(env *Env, t target, proto corev1.Protocol, spec *corev1.PodSpec, selects func(*Policy) bool) []hit {
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
	if spec != nil {
		eachContainer(spec, field.NewPath("spec"), func(_ string, c *corev1.Container, _ *field.Path) {
			for _, cp := range c.Ports {
				if cp.Name == t.name && defaultProtocol(cp.Protocol) == proto {
					env.covering(proto, cp.ContainerPort, func(p *Policy, _ PortRange) { add(p, cp.ContainerPort) })
				}
			}
		})
	}
	env.naming(t.name, proto, func(p *Policy, r PortRange) { add(p, r.From) })
	return hits
}

// EvaluateService finds the ports of a Service that reach a protected port
// of a pod it selects: an existing pod among pods (the namespace's pods; the
// function checks selection itself), a pod a workload among workloads would
// create (its template), or any pod at all when the Service's selector
// implies a policy's podSelector.
func EvaluateService(env *Env, svc *corev1.Service, pods []*corev1.Pod, workloads ...runtime.Object) []Finding {
	if env.Empty() || !inScope(svc) {
		return nil
	}
	obj := ObjectRef{Kind: "Service", Namespace: svc.Namespace, Name: objectName(svc.Name, svc.GenerateName)}
	svcSel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
	var selected []*corev1.Pod
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && svcSel.Matches(labels.Set(pod.Labels)) {
			selected = append(selected, pod)
		}
	}
	var c collector
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto := defaultProtocol(sp.Protocol)
		t := effectiveTarget(sp, field.NewPath("spec", "ports").Index(i))
		type reach struct {
			port      int32
			pods      []string
			templates []string
			implied   bool
		}
		reached := map[*Policy]*reach{}
		var order []*Policy
		note := func(h hit, pod string, implied bool) {
			r := reached[h.policy]
			if r == nil {
				r = &reach{port: h.port}
				reached[h.policy] = r
				order = append(order, h.policy)
			}
			if pod != "" {
				r.pods = append(r.pods, pod)
			}
			r.implied = r.implied || implied
		}
		for _, pod := range selected {
			podLabels := labels.Set(pod.Labels)
			for _, h := range targetHits(env, t, proto, &pod.Spec, func(p *Policy) bool { return p.Selector.Matches(podLabels) }) {
				note(h, pod.Name, false)
			}
		}
		for _, w := range workloads {
			tmpl, ok := PodTemplateOf(w)
			if !ok || tmpl.Object.Kind == "Pod" || !svcSel.Matches(labels.Set(tmpl.Labels)) {
				continue
			}
			tmplLabels := labels.Set(tmpl.Labels)
			for _, h := range targetHits(env, t, proto, tmpl.Spec, func(p *Policy) bool { return p.Selector.Matches(tmplLabels) }) {
				note(h, "", false)
				r := reached[h.policy]
				r.templates = append(r.templates, strings.ToLower(tmpl.Object.Kind)+" "+tmpl.Object.Name)
			}
		}
		for _, h := range targetHits(env, t, proto, nil, func(p *Policy) bool { return p.SelectsOnlyProtected(svc.Spec.Selector) }) {
			note(h, "", true)
		}
		for _, p := range order {
			r := reached[p]
			f := Finding{
				Object: obj, Field: t.field, Reason: ReasonServiceTarget, Port: r.port, Protocol: proto,
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
	if env.Empty() || pod.Spec == nil {
		return nil
	}
	podLabels := labels.Set(pod.Labels)
	var c collector
	for _, svc := range services {
		if !inScope(svc) || !labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(podLabels) {
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			proto := defaultProtocol(sp.Protocol)
			t := effectiveTarget(sp, field.NewPath("spec", "ports").Index(i))
			onWhat, selectWhat := "this pod", "the pod"
			if pod.Object.Kind != "Pod" {
				onWhat, selectWhat = "its pods", "its pods"
			}
			for _, h := range targetHits(env, t, proto, pod.Spec, func(p *Policy) bool { return p.Selector.Matches(podLabels) }) {
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

func describePods(pods, templates []string, implied bool) string {
	sort.Strings(pods)
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
		sort.Strings(templates)
		templates = slices.Compact(templates)
		parts = append(parts, "the pods of "+strings.Join(templates, ", "))
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
