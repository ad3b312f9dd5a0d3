package rules

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/internal/kinds"
)

// Owners finds a workload of one namespace by kind and name; nil when
// there is none. NewOwners builds it from a snapshot.
type Owners func(kind, name string) runtime.Object

// NewOwners indexes the namespace's workloads (every one, owned or not:
// a Deployment's ReplicaSets are the owners of its pods) by kind and name.
func NewOwners(workloads []runtime.Object) Owners {
	byKey := make(map[[2]string]runtime.Object, len(workloads))
	for _, o := range workloads {
		if kind := workloadKind(o); kind != "" {
			byKey[[2]string{kind, o.(metav1.Object).GetName()}] = o
		}
	}
	return func(kind, name string) runtime.Object { return byKey[[2]string{kind, name}] }
}

// workloadKind is the kind of a pod or workload by its type (objects read
// from a cache carry no TypeMeta); "" for any other object.
func workloadKind(o runtime.Object) string {
	if k, ok := kinds.Of(o); ok && (k.Role == kinds.RolePod || k.Role == kinds.RoleWorkload) {
		return k.GVK.Kind
	}
	return ""
}

// OwnedByWorkload reports whether obj (a pod or a workload) is judged
// through its controller owner, so that an audit reports the owner instead
// of each copy. Anyone who may create a pod may write its ownerReferences,
// so the owner is trusted only when it is real: it exists among owners with
// the reference's UID, its kind (and API group) controls obj's kind
// (ReplicaSet→Pod, Deployment→ReplicaSet, CronJob→Job, ...), and its
// template declares what the rules read of obj's (ports, hostNetwork):
// a copy that differs from its owner's template is judged itself.
func OwnedByWorkload(obj runtime.Object, owners Owners) bool {
	m, ok := obj.(metav1.Object)
	kind := workloadKind(obj)
	if !ok || kind == "" || owners == nil {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(m)
	if ref == nil {
		return false
	}
	group, ok := kinds.Controls(ref.Kind, kind)
	if !ok {
		return false
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != group {
		return false
	}
	owner := owners(ref.Kind, ref.Name)
	if owner == nil || workloadKind(owner) != ref.Kind || owner.(metav1.Object).GetUID() != types.UID(ref.UID) || ref.UID == "" {
		return false
	}
	child, ok1 := PodTemplateOf(obj)
	parent, ok2 := PodTemplateOf(owner)
	return ok1 && ok2 && sameExposure(child.Spec, parent.Spec)
}

// sameExposure compares what the pod rules read of two pod specs: the
// containers of each group with their ports, and hostNetwork. Images,
// resources and everything else may differ (a ReplicaSet of an older
// rollout). Ephemeral containers may declare no port. A container that a
// mutating webhook added to the pod only (a mesh sidecar) makes the pod
// differ: its ports are in no template, so the pod is judged itself.
func sameExposure(a, b *corev1.PodSpec) bool {
	type ctr struct {
		name    string
		restart *corev1.ContainerRestartPolicy
		ports   []corev1.ContainerPort
	}
	shape := func(cs []corev1.Container) []ctr {
		out := make([]ctr, len(cs))
		for i, c := range cs {
			out[i] = ctr{c.Name, c.RestartPolicy, c.Ports}
			if len(c.Ports) == 0 {
				out[i].ports = nil
			}
		}
		return out
	}
	return a.HostNetwork == b.HostNetwork &&
		reflect.DeepEqual(shape(a.Containers), shape(b.Containers)) &&
		reflect.DeepEqual(shape(a.InitContainers), shape(b.InitContainers))
}
