package rules

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/podview"
)

// PodTemplateOf returns the pod template an object carries: the Pod itself,
// or the template of a workload of internal/kinds (Deployment, ReplicaSet,
// StatefulSet, DaemonSet, Job, CronJob, ReplicationController). ok is false
// for any other object, and for a workload without a template.
func PodTemplateOf(obj runtime.Object) (PodTemplate, bool) {
	if o, ok := obj.(*corev1.Pod); ok { // a reviewed or listed pod, not a cached pod
		return PodTemplate{
			Object:   ObjectRef{Kind: "Pod", Namespace: o.Namespace, Name: objectName(o.Name, o.GenerateName)},
			Labels:   o.Labels,
			Spec:     &o.Spec,
			SpecPath: field.NewPath("spec"),
		}, true
	}
	if o, ok := obj.(*podview.Pod); ok {
		// A cached pod: its trimmed spec keeps every field and every
		// container and volume at its index that the rules read.
		return PodTemplate{
			Object:   ObjectRef{Kind: "Pod", Namespace: o.Namespace, Name: o.Name},
			Labels:   o.Labels,
			Spec:     o.TrimmedSpec,
			SpecPath: field.NewPath("spec"),
		}, true
	}
	k, ok := kinds.Of(obj)
	if !ok || k.Role != kinds.RoleWorkload {
		return PodTemplate{}, false
	}
	o := obj.(client.Object)
	t := k.Template(o)
	if t == nil {
		return PodTemplate{}, false
	}
	return PodTemplate{
		Object:   ObjectRef{Kind: k.GVK.Kind, Namespace: o.GetNamespace(), Name: objectName(o.GetName(), o.GetGenerateName())},
		Labels:   t.Labels,
		Spec:     &t.Spec,
		SpecPath: field.NewPath(k.TemplatePath[0], k.TemplatePath[1:]...).Child("spec"),
	}, true
}

// Cluster is what the rules may look at besides the object itself: the
// existing pods and Services of the object's namespace. Either may be nil
// when the caller knows they cannot matter.
type Cluster struct {
	// Pods: a Service is judged against them; so are an EndpointSlice and
	// an Endpoints object when Resolver is nil.
	Pods     []*podview.Pod
	Services []*corev1.Service
	// Workloads are the namespace's objects with a pod template
	// (PodTemplateOf): a Service judged against them also catches a
	// protected port that only a template declares, e.g. a Deployment
	// scaled to zero whose pods do not exist yet.
	Workloads []runtime.Object
	// Resolver resolves the addresses of an EndpointSlice or Endpoints
	// object to pods of any namespace and their namespaces' policies. nil:
	// only Pods, with the env of the review.
	Resolver Resolver
}

// resolver is c.Resolver, or one over c.Pods where only env applies.
func (c Cluster) resolver(env *Env) Resolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return NewResolver(c.Pods, func(ns string) *Env {
		if env != nil && ns == env.Namespace {
			return env
		}
		return nil
	})
}

// Evaluate is the single entry point of the exposure rules: every finding
// for a Pod, workload, Service, EndpointSlice or Endpoints in env's
// namespace. Review (admission) and Audit (the controller and the CLI)
// call it. An
// EndpointSlice or Endpoints object is judged through cluster.Resolver
// when there is one, against the policies of the namespaces of the pods
// it reaches, even when env (its own namespace's) is empty.
func Evaluate(env *Env, obj runtime.Object, cluster Cluster) []Finding {
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice:
		if cluster.Resolver == nil && env.Empty() {
			return nil
		}
		return EvaluateEndpointSlice(o, cluster.resolver(env))
	case *corev1.Endpoints:
		if cluster.Resolver == nil && env.Empty() {
			return nil
		}
		return EvaluateEndpoints(o, cluster.resolver(env))
	}
	if env.Empty() {
		return nil
	}
	switch o := obj.(type) {
	case *corev1.Service:
		return EvaluateService(env, o, cluster.Pods, cluster.Workloads...)
	}
	pod, ok := PodTemplateOf(obj)
	if !ok {
		return nil
	}
	findings := EvaluatePod(env, pod)
	return append(findings, EvaluatePodServices(env, pod, cluster.Services)...)
}
