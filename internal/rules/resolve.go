package rules

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/podview"
)

// PodKey names a pod.
type PodKey struct{ Namespace, Name string }

func (k PodKey) String() string { return k.Namespace + "/" + k.Name }

// Resolver is what the endpoint rules look up beyond the object's
// namespace: an address of an EndpointSlice or Endpoints object may be any
// pod's, in any namespace (CVE-2021-25740), and is judged by the policies
// of the pod's own namespace. Callers gather it from a snapshot
// (NewResolver) or an index.
type Resolver interface {
	// PodsByIP returns the pods that own ip (CanonicalIP form), in any
	// namespace: those PodIPs lists it for.
	PodsByIP(ip string) []*podview.Pod
	// Pod returns the pod namespace/name, or nil.
	Pod(namespace, name string) *podview.Pod
	// EnvFor returns the env of a namespace: the policies that may apply
	// there. nil or empty when none can.
	EnvFor(namespace string) *Env
}

// NewResolver resolves against a snapshot of pods (of any namespaces) and
// the envs envFor returns.
func NewResolver(pods []*podview.Pod, envFor func(namespace string) *Env) Resolver {
	r := &podResolver{byIP: map[string][]*podview.Pod{}, byKey: make(map[PodKey]*podview.Pod, len(pods)), envFor: envFor}
	for _, p := range pods {
		r.byKey[PodKey{p.Namespace, p.Name}] = p
		for _, ip := range PodIPs(p) {
			r.byIP[ip] = append(r.byIP[ip], p)
		}
	}
	return r
}

type podResolver struct {
	byIP   map[string][]*podview.Pod
	byKey  map[PodKey]*podview.Pod
	envFor func(string) *Env
}

func (s *podResolver) PodsByIP(ip string) []*podview.Pod { return s.byIP[ip] }
func (s *podResolver) Pod(namespace, name string) *podview.Pod {
	return s.byKey[PodKey{namespace, name}]
}
func (s *podResolver) EnvFor(namespace string) *Env { return s.envFor(namespace) }

// CanonicalIP is ip in netip's canonical form, so that the same address
// written two ways (IPv6) is one key.
func CanonicalIP(ip string) (string, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}

// PodIPs are the addresses a pod owns, canonical: none for a hostNetwork
// pod (its IP is the node's), one being deleted, or one that has finished
// (its IP is free for the next pod).
func PodIPs(p *podview.Pod) []string {
	if p.TrimmedSpec.HostNetwork || p.DeletionTimestamp != nil || p.Phase == corev1.PodSucceeded || p.Phase == corev1.PodFailed {
		return nil
	}
	var out []string
	for _, ip := range p.PodIPs {
		if a, ok := CanonicalIP(ip.IP); ok {
			out = append(out, a)
		}
	}
	if len(out) == 0 && p.PodIP != "" {
		if a, ok := CanonicalIP(p.PodIP); ok {
			out = append(out, a)
		}
	}
	return out
}

// EndpointRefs are the canonical IPs and the pods (by targetRef) an
// EndpointSlice or Endpoints object names: what a caller looks up to build
// its Resolver, and what an index of slices is keyed by.
func EndpointRefs(obj runtime.Object) (ips []string, pods []PodKey) {
	seenIP, seenPod := map[string]bool{}, map[PodKey]bool{}
	add := func(ip string, ref *corev1.ObjectReference, namespace string) {
		if a, ok := CanonicalIP(ip); ok && !seenIP[a] {
			seenIP[a] = true
			ips = append(ips, a)
		}
		if k := podRef(ref, namespace); k.Name != "" && !seenPod[k] {
			seenPod[k] = true
			pods = append(pods, k)
		}
	}
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice:
		if o.AddressType == discoveryv1.AddressTypeFQDN {
			return nil, nil
		}
		for _, ep := range o.Endpoints {
			for _, ip := range ep.Addresses {
				add(ip, ep.TargetRef, o.Namespace)
			}
		}
	case *corev1.Endpoints:
		for _, s := range o.Subsets {
			for _, list := range [][]corev1.EndpointAddress{s.Addresses, s.NotReadyAddresses} {
				for _, a := range list {
					add(a.IP, a.TargetRef, o.Namespace)
				}
			}
		}
	}
	return ips, pods
}

// EndpointSliceControllerName is the managed-by label value of the slices
// the EndpointSlice controller writes for Services with a selector.
const EndpointSliceControllerName = "endpointslice-controller.k8s.io"

// ControllerWrittenSlice reports whether slice is one the EndpointSlice
// controller writes for svc (the Service its kubernetes.io/service-name
// label names in its namespace; nil when there is none): the Service's
// findings, not the slice's. Labels are anyone's to write, so the label
// alone proves nothing: the slice must also be controlled by svc, by
// reference with svc's UID, and svc must have a selector (the controller
// writes no slice for a Service without one). Any other slice is
// hand-written (or mirrored from hand-written Endpoints) and judged.
func ControllerWrittenSlice(slice *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	if svc == nil || slice.Labels[discoveryv1.LabelManagedBy] != EndpointSliceControllerName ||
		slice.Labels[discoveryv1.LabelServiceName] != svc.Name || svc.Namespace != slice.Namespace ||
		len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(slice)
	return ref != nil && ref.Kind == "Service" && ref.APIVersion == "v1" && ref.Name == svc.Name && ref.UID == svc.UID && svc.UID != ""
}

// ControllerWrittenEndpoints reports whether eps is the Endpoints object
// the endpoints controller keeps for svc: named after a Service of its
// namespace that has a selector (and is not ExternalName). The controller
// replaces whatever anyone writes there with the Service's selection, so
// what it routes is the Service's finding, as for ControllerWrittenSlice;
// the Endpoints of a Service without a selector are hand-written and
// judged. (The webhook tells them apart by who writes them: the
// controller's writes never reach it.)
func ControllerWrittenEndpoints(eps *corev1.Endpoints, svc *corev1.Service) bool {
	return svc != nil && eps.Name == svc.Name && eps.Namespace == svc.Namespace &&
		len(svc.Spec.Selector) > 0 && svc.Spec.Type != corev1.ServiceTypeExternalName
}
