// Package podview is the manager's cached pod (docs/compact-pods.md): what
// loopguard's readers of the pod cache read, and nothing else, in a
// struct of 192 bytes instead of corev1.Pod's 1,280 (its size class). The
// rule engine judges cluster pods in this form; an admission review's own
// pod stays a corev1.Pod.
//
// Everything shared between pods is shared, not copied: the label map,
// the owner references and the container lists are the canonical ones of
// slim.NewPodTransform's interner, and the trimmed spec as a whole
// (slim.Pod's: containers, init and ephemeral containers, hostNetwork,
// hostPID, hostPath volumes; without the node name, which is NodeName
// here) is shared by every pod with an equal one: the pods of one
// workload. Like the pod cache today, a Pod and what it points to are
// read-only.
package podview

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Pod is the manager's cached view of a pod.
type Pod struct {
	Namespace, Name string
	UID             types.UID
	// ResourceVersion: the informer tells a resync from an update by it.
	ResourceVersion string
	// Labels and OwnerReferences are shared with other pods.
	Labels            map[string]string
	OwnerReferences   []metav1.OwnerReference
	DeletionTimestamp *metav1.Time
	NodeName          string
	Phase             corev1.PodPhase
	// PodIP is status.podIP; PodIPs status.podIPs only when it says more
	// than PodIP (dual-stack), else nil: IPs returns both.
	PodIP  string
	PodIPs []corev1.PodIP
	// TrimmedSpec is slim.Pod's trimmed spec, shared by the pods with an
	// equal one; never nil. Its NodeName is always empty: the node is
	// NodeName above (the name says so where a reader would write
	// p.Spec.NodeName of a corev1.Pod and silently read "").
	TrimmedSpec *corev1.PodSpec
}

// Of returns the Pod of a pod as it is, for readers that are not the
// manager's cache (the CLI's lists and files, a client in a test): no
// trimming, no sharing.
func Of(p *corev1.Pod) *Pod { return withSpec(p, ownSpec(&p.Spec)) }

// withSpec is the Pod of p with spec as its TrimmedSpec.
func withSpec(p *corev1.Pod, spec *corev1.PodSpec) *Pod {
	return &Pod{
		Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
		Labels: p.Labels, OwnerReferences: p.OwnerReferences, DeletionTimestamp: p.DeletionTimestamp,
		NodeName: p.Spec.NodeName, Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: extraIPs(p.Status),
		TrimmedSpec: spec,
	}
}

// ownSpec is a copy of spec without its node name.
func ownSpec(spec *corev1.PodSpec) *corev1.PodSpec {
	s := *spec
	s.NodeName = ""
	return &s
}

// From returns obj as a Pod: a *Pod as it is, a *corev1.Pod through Of.
// Event handlers and index functions take pods through it, so that one
// left on a type assertion to either type cannot drop pods silently.
func From(obj any) (*Pod, bool) {
	switch o := obj.(type) {
	case *Pod:
		return o, o != nil && o.TrimmedSpec != nil
	case *corev1.Pod:
		if o == nil {
			return nil, false
		}
		return Of(o), true
	}
	return nil, false
}

// extraIPs is status.podIPs when it says more than status.podIP, else nil.
func extraIPs(st corev1.PodStatus) []corev1.PodIP {
	if ips := st.PodIPs; len(ips) > 1 || (len(ips) == 1 && ips[0].IP != st.PodIP) {
		return ips
	}
	return nil
}

// IPs are the pod's IPs as status.podIPs lists them (status.podIP when
// the list is empty).
func (p *Pod) IPs() []corev1.PodIP {
	if p.PodIPs != nil || p.PodIP == "" {
		return p.PodIPs
	}
	return []corev1.PodIP{{IP: p.PodIP}}
}

// The metav1.Object and runtime.Object methods, so that the informer's
// key function (meta.Accessor), its indexers and controller-runtime's
// event handlers (client.Object) take a Pod as they take a corev1.Pod.
// Setters of fields a Pod does not keep do nothing.

var _ interface {
	metav1.Object
	runtime.Object
} = (*Pod)(nil)

func (p *Pod) GetNamespace() string                          { return p.Namespace }
func (p *Pod) SetNamespace(ns string)                        { p.Namespace = ns }
func (p *Pod) GetName() string                               { return p.Name }
func (p *Pod) SetName(n string)                              { p.Name = n }
func (p *Pod) GetGenerateName() string                       { return "" }
func (p *Pod) SetGenerateName(string)                        {}
func (p *Pod) GetUID() types.UID                             { return p.UID }
func (p *Pod) SetUID(uid types.UID)                          { p.UID = uid }
func (p *Pod) GetResourceVersion() string                    { return p.ResourceVersion }
func (p *Pod) SetResourceVersion(v string)                   { p.ResourceVersion = v }
func (p *Pod) GetGeneration() int64                          { return 0 }
func (p *Pod) SetGeneration(int64)                           {}
func (p *Pod) GetSelfLink() string                           { return "" }
func (p *Pod) SetSelfLink(string)                            {}
func (p *Pod) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (p *Pod) SetCreationTimestamp(metav1.Time)              {}
func (p *Pod) GetDeletionTimestamp() *metav1.Time            { return p.DeletionTimestamp }
func (p *Pod) SetDeletionTimestamp(t *metav1.Time)           { p.DeletionTimestamp = t }
func (p *Pod) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (p *Pod) SetDeletionGracePeriodSeconds(*int64)          {}
func (p *Pod) GetLabels() map[string]string                  { return p.Labels }
func (p *Pod) SetLabels(l map[string]string)                 { p.Labels = l }
func (p *Pod) GetAnnotations() map[string]string             { return nil }
func (p *Pod) SetAnnotations(map[string]string)              {}
func (p *Pod) GetFinalizers() []string                       { return nil }
func (p *Pod) SetFinalizers([]string)                        {}
func (p *Pod) GetOwnerReferences() []metav1.OwnerReference   { return p.OwnerReferences }
func (p *Pod) SetOwnerReferences(r []metav1.OwnerReference)  { p.OwnerReferences = r }
func (p *Pod) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (p *Pod) SetManagedFields([]metav1.ManagedFieldsEntry)  {}

// GetObjectKind: a Pod carries no TypeMeta (objects read from a cache
// carry none either).
func (p *Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the Pod and what it shares with other pods
// (labels, owner references, spec), as runtime.Object promises: a caller
// that copies to write must not write into every pod of a workload. The
// manager's cache does not copy pods (UnsafeDisableDeepCopy).
func (p *Pod) DeepCopyObject() runtime.Object {
	c := *p
	c.Labels = maps.Clone(p.Labels)
	if p.OwnerReferences != nil {
		c.OwnerReferences = make([]metav1.OwnerReference, len(p.OwnerReferences))
		for i := range p.OwnerReferences {
			p.OwnerReferences[i].DeepCopyInto(&c.OwnerReferences[i])
		}
	}
	c.DeletionTimestamp = p.DeletionTimestamp.DeepCopy()
	c.PodIPs = slices.Clone(p.PodIPs)
	c.TrimmedSpec = p.TrimmedSpec.DeepCopy()
	return &c
}
