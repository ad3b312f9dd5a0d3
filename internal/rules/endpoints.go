package rules

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// ReasonEndpointTarget: a hand-written EndpointSlice or Endpoints object
// (behind a Service without a selector) routes to a protected port of a pod.
const ReasonEndpointTarget = "EndpointTarget"

// HandWrittenEndpointSlices selects the EndpointSlices to judge: all but
// those the EndpointSlice controller writes for Services with a selector,
// which are the Services' findings (mirrored ones, copied from hand-written
// Endpoints, are judged).
var HandWrittenEndpointSlices = func() labels.Selector {
	r, err := labels.NewRequirement(discoveryv1.LabelManagedBy, selection.NotEquals, []string{"endpointslice-controller.k8s.io"})
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*r)
}()

// endpointAddress is one address of an EndpointSlice or Endpoints object.
type endpointAddress struct {
	ip     string
	podRef string // targetRef.name when targetRef.kind is Pod
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

// podRef is the name of the pod ref points to in namespace, or "".
func podRef(ref *corev1.ObjectReference, namespace string) string {
	if ref == nil || ref.Kind != "Pod" || (ref.Namespace != "" && ref.Namespace != namespace) {
		return ""
	}
	return ref.Name
}

// EvaluateEndpointSlice finds the ports of an EndpointSlice that reach a
// protected port of a pod among pods (the namespace's pods), by the
// endpoint's targetRef or, without one, by pod IP. A Service without a
// selector and a hand-written EndpointSlice route traffic as a Service with
// a selector would; the slices the EndpointSlice controller writes for
// Services with selectors are the Service's findings, and the webhook
// configuration leaves them to the Service.
func EvaluateEndpointSlice(env *Env, slice *discoveryv1.EndpointSlice, pods []*corev1.Pod) []Finding {
	if env.Empty() || slice.AddressType == discoveryv1.AddressTypeFQDN {
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
	return evaluateEndpoints(env, obj, []endpointGroup{g}, pods)
}

// EvaluateEndpoints is EvaluateEndpointSlice for the older Endpoints API,
// which the EndpointSlice mirroring controller copies into slices.
func EvaluateEndpoints(env *Env, eps *corev1.Endpoints, pods []*corev1.Pod) []Finding {
	if env.Empty() {
		return nil
	}
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
	return evaluateEndpoints(env, obj, groups, pods)
}

// evaluateEndpoints judges each group's addresses against its ports.
func evaluateEndpoints(env *Env, obj ObjectRef, groups []endpointGroup, pods []*corev1.Pod) []Finding {
	byName := make(map[string]*corev1.Pod, len(pods))
	byIP := make(map[netip.Addr]*corev1.Pod, len(pods))
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		byName[p.Name] = p
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil && !p.Spec.HostNetwork {
				byIP[a] = p
			}
		}
	}
	var c collector
	for _, g := range groups {
		for _, a := range g.addrs {
			pod := byName[a.podRef]
			if pod == nil {
				if ip, err := netip.ParseAddr(a.ip); err == nil {
					pod = byIP[ip]
				}
			}
			if pod == nil {
				continue
			}
			podLabels := labels.Set(pod.Labels)
			for _, p := range g.ports {
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
						Related: "pod/" + pod.Name,
						format: fmt.Sprintf("routes %s to pod %q (%s %s); that port is declared loopback-only by %s; remove the address or the port (a Service without a selector exposes what its endpoints list)",
							portDesc, pod.Name, a.field, a.ip, policiesMark),
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
	}
	return c.findings
}
