package discover

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

type objectKey struct{ kind, namespace, name string }

// ownerIndex finds an owner object by kind, namespace and name.
type ownerIndex map[objectKey]client.Object

func indexOwners(objs []client.Object) ownerIndex {
	out := ownerIndex{}
	for _, o := range objs {
		if k := kindOf(o); k != "" {
			out[objectKey{k, o.GetNamespace(), o.GetName()}] = o
		}
	}
	return out
}

// kindOf names the owner kinds the chain follows (typed objects carry no
// TypeMeta after a List).
func kindOf(o client.Object) string {
	switch o.(type) {
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.DaemonSet:
		return "DaemonSet"
	case *batchv1.Job:
		return "Job"
	case *batchv1.CronJob:
		return "CronJob"
	}
	return ""
}

// templateLabels are the labels of the object's pod template.
func templateLabels(o client.Object) map[string]string {
	switch w := o.(type) {
	case *appsv1.ReplicaSet:
		return w.Spec.Template.Labels
	case *appsv1.Deployment:
		return w.Spec.Template.Labels
	case *appsv1.StatefulSet:
		return w.Spec.Template.Labels
	case *appsv1.DaemonSet:
		return w.Spec.Template.Labels
	case *batchv1.Job:
		return w.Spec.Template.Labels
	case *batchv1.CronJob:
		return w.Spec.JobTemplate.Spec.Template.Labels
	}
	return nil
}

func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// resolve follows the pod's controller references up to the top object
// found (matching UIDs), and returns it with its template's labels; the
// pod itself and its labels when nothing owns it or the owner is unknown.
func resolve(pod *corev1.Pod, owners ownerIndex) (Workload, map[string]string) {
	wl, lbls := Workload{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}, pod.Labels
	refs := pod.OwnerReferences
	for range 4 { // Pod → Job → CronJob, Pod → ReplicaSet → Deployment
		ref := controllerOf(refs)
		if ref == nil {
			break
		}
		o, ok := owners[objectKey{ref.Kind, pod.Namespace, ref.Name}]
		if !ok || o.GetUID() != ref.UID {
			break
		}
		wl, lbls = Workload{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}, templateLabels(o)
		refs = o.GetOwnerReferences()
	}
	return wl, lbls
}

// protected reports whether a policy of the pod's namespace already
// protects the port for the pod.
func protected(policies []v1alpha1.LoopbackService, pod *corev1.Pod, k portKey) bool {
	for i := range policies {
		p := &policies[i]
		if p.Namespace != pod.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil || !sel.Matches(labelSet(pod.Labels)) {
			continue
		}
		for _, lp := range p.Spec.Ports {
			if lp.Covers(k.proto, k.port) {
				return true
			}
		}
	}
	return false
}

func labelSet(m map[string]string) labels.Set { return labels.Set(m) }

// declared reports whether a containerPort of the pod, or a Service of its
// namespace that selects it, declares the port.
func declared(pod *corev1.Pod, services []corev1.Service, k portKey) bool {
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto == k.proto && cp.ContainerPort == k.port {
				return true
			}
		}
	}
	for i := range services {
		svc := &services[i]
		if svc.Namespace != pod.Namespace || len(svc.Spec.Selector) == 0 || !labelSet(svc.Spec.Selector).AsSelector().Matches(labelSet(pod.Labels)) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			proto := sp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto != k.proto {
				continue
			}
			// A named targetPort names a containerPort: checked above.
			if sp.TargetPort.Type == intstr.Int && (sp.TargetPort.IntVal == k.port || sp.TargetPort.IntVal == 0 && sp.Port == k.port) {
				return true
			}
		}
	}
	return false
}
