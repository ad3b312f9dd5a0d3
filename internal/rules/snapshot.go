package rules

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/podview"
)

// NamespaceNameLabel is the label the API server puts on every namespace
// (its name, immutable); cluster policies often select on it.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// NewEnv is the one constructor of an Env: a namespace, its labels, and the
// policy sets that may apply there (nil and empty sets are left out, so
// that Empty is cheap).
func NewEnv(namespace string, nsLabels labels.Labels, sets ...*Set) *Env {
	env := &Env{Namespace: namespace, NamespaceLabels: nsLabels}
	for _, s := range sets {
		if s.Len() > 0 {
			env.Sets = append(env.Sets, s)
		}
	}
	return env
}

// NamespaceLabels are a namespace's labels as the API server keeps them:
// l with NamespaceNameLabel set to the name, for callers that read
// namespaces from elsewhere (files, a namespace they may not get).
func NamespaceLabels(name string, l map[string]string) labels.Set {
	out := labels.Set{NamespaceNameLabel: name}
	for k, v := range l {
		out[k] = v
	}
	return out
}

// Snapshot is what the rules judge of one namespace, however the caller
// read it (the informer cache, paged API lists, YAML files): the env (the
// namespace, its labels and the policies that may apply there) and the
// namespace's objects. Audit judges it whole; Review judges one object
// against it.
type Snapshot struct {
	Env *Env
	// Pods of the namespace; Audit leaves out those being deleted.
	Pods []*podview.Pod
	// Workloads are the namespace's objects with a pod template, every
	// one, owned or not: an object a real owner controls with the same
	// template is judged through it (OwnedByWorkload).
	Workloads       []runtime.Object
	Services        []*corev1.Service
	EndpointSlices  []*discoveryv1.EndpointSlice
	Endpoints       []*corev1.Endpoints
	NetworkPolicies []*networkingv1.NetworkPolicy
	// Resolver resolves endpoint addresses to pods of any namespace and
	// their namespaces' envs; nil: Pods, with Env only.
	Resolver Resolver
	// OwnNetworkPoliciesWritten: the caller has just written each policy's
	// own managed NetworkPolicy (ManagedNetworkPolicyName, controlled by
	// the policy's UID), which closes its ports by construction; Audit
	// does not judge it against that policy (a cache may not show the
	// write yet). Otherwise every NetworkPolicy is judged: a label
	// anyone with edit can write proves nothing.
	OwnNetworkPoliciesWritten bool
}

// Add puts an object of a judged kind (internal/kinds) in its list; false
// for any other object.
func (s *Snapshot) Add(obj runtime.Object) bool {
	k, ok := kinds.Of(obj)
	if !ok {
		return false
	}
	switch o := obj.(type) {
	case *podview.Pod:
		s.Pods = append(s.Pods, o)
	case *corev1.Pod: // from a list or a file, not a cached pod: converted
		s.Pods = append(s.Pods, podview.Of(o))
	case *corev1.Service:
		s.Services = append(s.Services, o)
	case *discoveryv1.EndpointSlice:
		s.EndpointSlices = append(s.EndpointSlices, o)
	case *corev1.Endpoints:
		s.Endpoints = append(s.Endpoints, o)
	default:
		if k.Role != kinds.RoleWorkload {
			return false
		}
		s.Workloads = append(s.Workloads, obj)
	}
	return true
}

// env is s.Env, or an empty one.
func (s *Snapshot) env() *Env {
	if s.Env == nil {
		return NewEnv("", nil)
	}
	return s.Env
}

// LivePods are the snapshot's pods not being deleted.
func (s *Snapshot) LivePods() []*podview.Pod {
	out := make([]*podview.Pod, 0, len(s.Pods))
	for _, p := range s.Pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// Selected are the live pods a policy of the env selects.
func (s *Snapshot) Selected() []*podview.Pod {
	env := s.env()
	var out []*podview.Pod
	for _, p := range s.LivePods() {
		if len(env.MatchingPolicies(labels.Set(p.Labels))) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// Report is what Audit finds in a snapshot.
type Report struct {
	// Judged are the objects judged, each with its findings (often none):
	// the pods not judged through their owner, the Services, the
	// workloads not judged through their owner, the EndpointSlices and
	// the Endpoints that the control plane did not write for a Service of
	// the snapshot (ControllerWrittenSlice, ControllerWrittenEndpoints),
	// in that order and in the snapshot's order within each.
	Judged []Judged
	// Conflicts are the NetworkPolicies that re-open a protected port of
	// a selected pod, by NetworkPolicy in the snapshot's order, then by
	// policy.
	Conflicts []Conflict
}

// Judged is one object of an audit and its findings.
type Judged struct {
	Object   runtime.Object
	Findings []Finding
}

// Findings are the findings of every judged object, in order.
func (r *Report) Findings() []Finding {
	var out []Finding
	for _, j := range r.Judged {
		out = append(out, j.Findings...)
	}
	return out
}

// Audit judges everything a snapshot holds, as the controller, `loopguard
// audit` and `loopguard check` report it: every finding of the objects
// (Evaluate), and the NetworkPolicies that defeat a policy of the env
// (NetworkPolicyConflicts). A pod or workload that a real owner controls
// with the same template is judged through its owner; a pod being deleted
// is not judged, nor seen by the Services and NetworkPolicies.
func Audit(s Snapshot) Report {
	env := s.env()
	pods := s.LivePods()
	owners := NewOwners(s.Workloads)
	cluster := Cluster{Pods: pods, Services: s.Services, Resolver: s.Resolver}
	for _, w := range s.Workloads {
		if !OwnedByWorkload(w, owners) {
			cluster.Workloads = append(cluster.Workloads, w)
		}
	}
	// Each Service is judged against the pods and workloads it may
	// select, each pod and workload against the Services that may select
	// it: the index finds them (the rules still match each one).
	sel := newLabelIndex(pods, cluster.Workloads, s.Services)
	var rep Report
	judge := func(o runtime.Object) {
		c := cluster
		switch o := o.(type) {
		case *corev1.Service:
			c.Pods, c.Workloads = sel.selectedBy(o)
		case *podview.Pod:
			c.Services = sel.selecting(o.Labels)
		case *discoveryv1.EndpointSlice, *corev1.Endpoints:
		default:
			if t, ok := PodTemplateOf(o); ok {
				c.Services = sel.selecting(t.Labels)
			}
		}
		rep.Judged = append(rep.Judged, Judged{Object: o, Findings: Evaluate(env, o, c)})
	}
	for _, p := range pods {
		if !OwnedByWorkload(p, owners) {
			judge(p)
		}
	}
	for _, svc := range s.Services {
		judge(svc)
	}
	for _, w := range cluster.Workloads {
		judge(w)
	}
	// The control plane's own endpoints of the snapshot's Services (a
	// dump of a namespace holds them) are those Services' findings.
	services := make(map[string]*corev1.Service, len(s.Services))
	for _, svc := range s.Services {
		services[svc.Name] = svc
	}
	for _, e := range s.EndpointSlices {
		if !ControllerWrittenSlice(e, services[e.Labels[discoveryv1.LabelServiceName]]) {
			judge(e)
		}
	}
	for _, e := range s.Endpoints {
		if !ControllerWrittenEndpoints(e, services[e.Name]) {
			judge(e)
		}
	}
	if len(s.NetworkPolicies) == 0 {
		return rep
	}
	policies := env.Policies()
	sort.Slice(policies, func(i, j int) bool { return policies[i].Ref.String() < policies[j].Ref.String() })
	for _, np := range s.NetworkPolicies {
		for _, p := range policies {
			if s.OwnNetworkPoliciesWritten && ownNetworkPolicy(np, p) {
				continue
			}
			for _, c := range NetworkPolicyConflicts(np, p, pods) {
				c.Policy = p.Ref
				rep.Conflicts = append(rep.Conflicts, c)
			}
		}
	}
	return rep
}

// ManagedNetworkPolicyName is the predictable name of the NetworkPolicy a
// policy owns: loopguard-<name> for a LoopbackService and
// loopguard-cluster-<name> for a ClusterLoopbackService.
func ManagedNetworkPolicyName(ref PolicyRef) string {
	name := "loopguard-" + ref.Name
	if ref.Kind == KindClusterLoopbackService {
		name = "loopguard-cluster-" + ref.Name
	}
	if len(name) > 253 {
		name = name[:253]
	}
	return name
}

// ownNetworkPolicy reports whether np is p's own managed NetworkPolicy,
// recognised by name and controller UID.
func ownNetworkPolicy(np *networkingv1.NetworkPolicy, p *Policy) bool {
	ref := metav1.GetControllerOf(np)
	return np.Name == ManagedNetworkPolicyName(p.Ref) && ref != nil && ref.UID == p.UID && p.UID != ""
}
