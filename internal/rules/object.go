package rules

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodTemplateOf returns the pod template an object carries: the Pod itself,
// or the template of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
// CronJob or ReplicationController. ok is false for any other object.
func PodTemplateOf(obj runtime.Object) (PodTemplate, bool) {
	tmpl := field.NewPath("spec", "template")
	var (
		kind string
		meta interface {
			GetNamespace() string
			GetName() string
			GetGenerateName() string
		}
		t *corev1.PodTemplateSpec
	)
	switch o := obj.(type) {
	case *corev1.Pod:
		return PodTemplate{
			Object:   ObjectRef{Kind: "Pod", Namespace: o.Namespace, Name: objectName(o.Name, o.GenerateName)},
			Labels:   o.Labels,
			Spec:     &o.Spec,
			SpecPath: field.NewPath("spec"),
		}, true
	case *appsv1.Deployment:
		kind, meta, t = "Deployment", o, &o.Spec.Template
	case *appsv1.ReplicaSet:
		kind, meta, t = "ReplicaSet", o, &o.Spec.Template
	case *appsv1.StatefulSet:
		kind, meta, t = "StatefulSet", o, &o.Spec.Template
	case *appsv1.DaemonSet:
		kind, meta, t = "DaemonSet", o, &o.Spec.Template
	case *batchv1.Job:
		kind, meta, t = "Job", o, &o.Spec.Template
	case *batchv1.CronJob:
		kind, meta, t = "CronJob", o, &o.Spec.JobTemplate.Spec.Template
		tmpl = field.NewPath("spec", "jobTemplate", "spec", "template")
	case *corev1.ReplicationController:
		kind, meta, t = "ReplicationController", o, o.Spec.Template
	default:
		return PodTemplate{}, false
	}
	if t == nil {
		return PodTemplate{}, false
	}
	return PodTemplate{
		Object:   ObjectRef{Kind: kind, Namespace: meta.GetNamespace(), Name: objectName(meta.GetName(), meta.GetGenerateName())},
		Labels:   t.Labels,
		Spec:     &t.Spec,
		SpecPath: tmpl.Child("spec"),
	}, true
}

// judgedThroughOwner are the kinds whose controller-owned children (a
// Deployment's ReplicaSets and their pods, a CronJob's Jobs) carry the same
// template: the owner is the object to report and fix.
var judgedThroughOwner = map[string]bool{
	"Deployment": true, "ReplicaSet": true, "StatefulSet": true, "DaemonSet": true,
	"Job": true, "CronJob": true, "ReplicationController": true,
}

// OwnedByWorkload reports whether an object is controlled by a workload
// the rules judge, so that an audit reports the owner instead of each copy.
func OwnedByWorkload(refs []metav1.OwnerReference) bool {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller && judgedThroughOwner[r.Kind] {
			return true
		}
	}
	return false
}

// Cluster is what the rules may look at besides the object itself: the
// existing pods and Services of the object's namespace. Either may be nil
// when the caller knows they cannot matter.
type Cluster struct {
	// Pods: a Service, EndpointSlice or Endpoints is judged against them.
	Pods     []*corev1.Pod
	Services []*corev1.Service
	// Workloads are the namespace's objects with a pod template
	// (PodTemplateOf): a Service judged against them also catches a
	// protected port that only a template declares, e.g. a Deployment
	// scaled to zero whose pods do not exist yet.
	Workloads []runtime.Object
}

// Evaluate is the single entry point of the exposure rules: every finding
// for a Pod, workload, Service, EndpointSlice or Endpoints in env's
// namespace. The admission webhook,
// the audit and the CLI all call it.
func Evaluate(env *Env, obj runtime.Object, cluster Cluster) []Finding {
	if env.Empty() {
		return nil
	}
	switch o := obj.(type) {
	case *corev1.Service:
		return EvaluateService(env, o, cluster.Pods, cluster.Workloads...)
	case *discoveryv1.EndpointSlice:
		return EvaluateEndpointSlice(env, o, cluster.Pods)
	case *corev1.Endpoints:
		return EvaluateEndpoints(env, o, cluster.Pods)
	}
	pod, ok := PodTemplateOf(obj)
	if !ok {
		return nil
	}
	findings := EvaluatePod(env, pod)
	return append(findings, EvaluatePodServices(env, pod, cluster.Services)...)
}
