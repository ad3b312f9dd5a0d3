package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/internal/podview"
)

// ReasonEndpointTarget: a hand-written EndpointSlice or Endpoints object
// (behind a Service without a selector) routes to a protected port of a pod.
const ReasonEndpointTarget = "EndpointTarget"

// endpointAddress is one address of an EndpointSlice or Endpoints object.
type endpointAddress struct {
	ip     string
	podRef PodKey // the targetRef when its kind is Pod
	field  string
}

// endpointPort is one port of an EndpointSlice or Endpoints object; port 0
// is an EndpointSlice port left unset, which does not restrict the ports.
type endpointPort struct {
	port     int32
	protocol corev1.Protocol
	field    string
}

// endpointGroup is addresses and the ports they serve: a slice is one
// group, an Endpoints object one per subset.
type endpointGroup struct {
	addrs []endpointAddress
	ports []endpointPort
}

// podRef is the pod ref points to, its namespace defaulting to the
// object's; zero when ref names no pod.
func podRef(ref *corev1.ObjectReference, namespace string) PodKey {
	if ref == nil || ref.Kind != "Pod" || ref.Name == "" {
		return PodKey{}
	}
	if ref.Namespace != "" {
		namespace = ref.Namespace
	}
	return PodKey{Namespace: namespace, Name: ref.Name}
}

// EvaluateEndpointSlice finds the ports of an EndpointSlice that reach a
// protected port of a pod, whatever namespace the pod is in: each address
// is judged against both the pod its targetRef names and the pod that owns
// its IP (kube-proxy routes by IP; the reference is a claim anyone can
// write), each with the policies of that pod's namespace (r.EnvFor). A
// Service without a selector and a hand-written EndpointSlice route traffic
// as a Service with a selector would; the slices the EndpointSlice
// controller writes for Services with selectors (ControllerWrittenSlice)
// are the Service's findings, and the webhook configuration leaves them to
// the Service.
func EvaluateEndpointSlice(slice *discoveryv1.EndpointSlice, r Resolver) []Finding {
	if slice.AddressType == discoveryv1.AddressTypeFQDN {
		return nil
	}
	var g endpointGroup
	for i, ep := range slice.Endpoints {
		ref := podRef(ep.TargetRef, slice.Namespace)
		for j, ip := range ep.Addresses {
			g.addrs = append(g.addrs, endpointAddress{ip: ip, podRef: ref, field: fmt.Sprintf("endpoints[%d].addresses[%d]", i, j)})
		}
	}
	for i, p := range slice.Ports {
		ep := endpointPort{protocol: defaultProtocol(ptr.Deref(p.Protocol, "")), field: field.NewPath("ports").Index(i).Child("port").String()}
		if p.Port != nil {
			ep.port = *p.Port
		}
		g.ports = append(g.ports, ep)
	}
	obj := ObjectRef{Kind: "EndpointSlice", Namespace: slice.Namespace, Name: objectName(slice.Name, slice.GenerateName)}
	return evaluateEndpoints(obj, []endpointGroup{g}, r)
}

// EvaluateEndpoints is EvaluateEndpointSlice for the older Endpoints API,
// which the EndpointSlice mirroring controller copies into slices.
func EvaluateEndpoints(eps *corev1.Endpoints, r Resolver) []Finding {
	groups := make([]endpointGroup, len(eps.Subsets))
	for i, s := range eps.Subsets {
		g := &groups[i]
		for _, list := range []struct {
			name  string
			addrs []corev1.EndpointAddress
		}{{"addresses", s.Addresses}, {"notReadyAddresses", s.NotReadyAddresses}} {
			for j, a := range list.addrs {
				g.addrs = append(g.addrs, endpointAddress{ip: a.IP, podRef: podRef(a.TargetRef, eps.Namespace), field: fmt.Sprintf("subsets[%d].%s[%d]", i, list.name, j)})
			}
		}
		for k, p := range s.Ports {
			g.ports = append(g.ports, endpointPort{port: p.Port, protocol: defaultProtocol(p.Protocol), field: fmt.Sprintf("subsets[%d].ports[%d].port", i, k)})
		}
	}
	obj := ObjectRef{Kind: "Endpoints", Namespace: eps.Namespace, Name: objectName(eps.Name, eps.GenerateName)}
	return evaluateEndpoints(obj, groups, r)
}

// addressPods are the live pods an address reaches or names: the one its
// targetRef names and the ones that own its IP, each once.
func addressPods(a endpointAddress, r Resolver) []*podview.Pod {
	var out []*podview.Pod
	add := func(p *podview.Pod) {
		if p == nil || p.DeletionTimestamp != nil {
			return
		}
		for _, q := range out {
			if q.Namespace == p.Namespace && q.Name == p.Name {
				return
			}
		}
		out = append(out, p)
	}
	if a.podRef.Name != "" {
		add(r.Pod(a.podRef.Namespace, a.podRef.Name))
	}
	if ip, ok := CanonicalIP(a.ip); ok {
		for _, p := range r.PodsByIP(ip) {
			add(p)
		}
	}
	return out
}

// evaluateEndpoints judges each group's addresses against its ports.
func evaluateEndpoints(obj ObjectRef, groups []endpointGroup, r Resolver) []Finding {
	var c collector
	for _, g := range groups {
		for _, a := range g.addrs {
			for _, pod := range addressPods(a, r) {
				env := r.EnvFor(pod.Namespace)
				if env == nil || env.Empty() {
					continue
				}
				judgeAddress(env, obj, g.ports, a, pod, &c)
			}
		}
	}
	return c.findings
}

// judgeAddress adds a finding for each port of the group that reaches a
// port protected on pod by a policy of env (the env of pod's namespace).
func judgeAddress(env *Env, obj ObjectRef, ports []endpointPort, a endpointAddress, pod *podview.Pod, c *collector) {
	podLabels := labels.Set(pod.Labels)
	name := pod.Name
	if pod.Namespace != obj.Namespace {
		name = pod.Namespace + "/" + pod.Name
	}
	for _, p := range ports {
		reach := func(pol *Policy, port int32) {
			if !pol.Selector.Matches(podLabels) {
				return
			}
			portDesc := fmt.Sprintf("port %d/%s at %s", port, p.protocol, p.field)
			if p.port == 0 {
				portDesc = fmt.Sprintf("every port (%s is unset), so %d/%s,", p.field, port, p.protocol)
			}
			f := Finding{
				Object: obj, Field: p.field, Reason: ReasonEndpointTarget, Port: port, Protocol: p.protocol,
				Related: "pod/" + name,
				format: fmt.Sprintf("routes %s to pod %q (%s %s); that port is declared loopback-only by %s; remove the address or the port (a Service without a selector exposes what its endpoints list)",
					portDesc, name, a.field, a.ip, policiesMark),
			}
			c.add(f, pol, pol.Action)
		}
		if p.port != 0 {
			env.covering(p.protocol, p.port, func(pol *Policy, _ PortRange) { reach(pol, p.port) })
			continue
		}
		env.each(func(pol *Policy) {
			for _, r := range pol.Ports {
				if r.Protocol == p.protocol {
					reach(pol, r.From)
					return
				}
			}
		})
	}
}
