// Package kinds is the one list of the kinds loopguard judges: their
// version, their Go and list types, where their pod template lives and
// which of them a workload controls. The admission webhook (its switch and
// its slim decoder), the rules (rules.PodTemplateOf, owner references),
// the CLI decoders and listings, and the controllers' watches all range
// over it; a test beside the webhook and one beside the controllers fail
// when a kubebuilder marker disagrees with it.
//
// Adding a kind is one entry here, its slim decoding in webhooks/ when it
// is large, and tests.
package kinds

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/podview"
)

// Role says how the rules judge a kind.
type Role int

const (
	// RolePod: the pod itself, with its own spec.
	RolePod Role = iota
	// RoleWorkload: an object that carries a pod template.
	RoleWorkload
	// RoleService: a Service, judged against the pods and templates it
	// selects.
	RoleService
	// RoleEndpoints: an EndpointSlice or Endpoints object, judged by the
	// policies of the pods whose addresses it lists, in any namespace.
	RoleEndpoints
)

// Kind is one judged kind.
type Kind struct {
	// GVK is the only version the webhook is registered for (matchPolicy
	// Equivalent converts the others to it).
	GVK schema.GroupVersionKind
	// Resource is the plural resource name, as in markers and RBAC.
	Resource string
	Role     Role
	New      func() client.Object
	NewList  func() client.ObjectList
	// Exemplar is one New() made once, to find the kind's informer by
	// (clusterindex.Objects): never written.
	Exemplar client.Object
	// TemplatePath is where a workload's pod template lives.
	TemplatePath []string
	// Template returns a workload's pod template, nil when it has none;
	// SetTemplate sets it (nil: none).
	Template    func(client.Object) *corev1.PodTemplateSpec
	SetTemplate func(client.Object, *corev1.PodTemplateSpec)
	// Controls are the kinds whose objects a workload of this kind
	// controls: those objects are judged through it when their template
	// is its own (rules.OwnedByWorkload).
	Controls []string
	// Watched: the controllers watch it and `loopguard audit` lists it.
	// Endpoints objects are judged at admission only (the API server's
	// mirror of a slice, and every hand-written one, is also an
	// EndpointSlice, which is audited).
	Watched bool
}

var spec = []string{"spec", "template"}

// The markers of the table (controller-gen reads them here): the manager
// may read every watched kind (the controllers watch them, the webhook's
// cache lists them), and the exposure webhook (webhooks.Path) is
// registered for every judged kind, v1 only. TestRBACMarkersCoverWatchedKinds
// and TestWebhookMarkersMatchTable fail when they and All disagree.
//
// +kubebuilder:rbac:groups="",resources=pods;services;replicationcontrollers,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;replicasets;statefulsets;daemonsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="",resources=pods,verbs=create;update,versions=v1,name=pods.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="",resources=services,verbs=create;update,versions=v1,name=services.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups=apps;batch,resources=deployments;replicasets;statefulsets;daemonsets;jobs;cronjobs,verbs=create;update,versions=v1,name=workloads.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="",resources=replicationcontrollers,verbs=create;update,versions=v1,name=replicationcontrollers.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="";discovery.k8s.io,resources=endpoints;endpointslices,verbs=create;update,versions=v1,name=endpoints.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// All is every judged kind, in a fixed order: pods, Services, workloads,
// endpoints.
var All = []Kind{
	{GVK: corev1.SchemeGroupVersion.WithKind("Pod"), Resource: "pods", Role: RolePod, Watched: true,
		New: func() client.Object { return &corev1.Pod{} }, NewList: func() client.ObjectList { return &corev1.PodList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Service"), Resource: "services", Role: RoleService, Watched: true,
		New: func() client.Object { return &corev1.Service{} }, NewList: func() client.ObjectList { return &corev1.ServiceList{} }},
	workload(appsv1.SchemeGroupVersion.WithKind("Deployment"), "deployments", spec, []string{"ReplicaSet"},
		func() *appsv1.Deployment { return &appsv1.Deployment{} }, func() client.ObjectList { return &appsv1.DeploymentList{} },
		func(o *appsv1.Deployment) *corev1.PodTemplateSpec { return &o.Spec.Template }),
	workload(appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), "replicasets", spec, []string{"Pod"},
		func() *appsv1.ReplicaSet { return &appsv1.ReplicaSet{} }, func() client.ObjectList { return &appsv1.ReplicaSetList{} },
		func(o *appsv1.ReplicaSet) *corev1.PodTemplateSpec { return &o.Spec.Template }),
	workload(appsv1.SchemeGroupVersion.WithKind("StatefulSet"), "statefulsets", spec, []string{"Pod"},
		func() *appsv1.StatefulSet { return &appsv1.StatefulSet{} }, func() client.ObjectList { return &appsv1.StatefulSetList{} },
		func(o *appsv1.StatefulSet) *corev1.PodTemplateSpec { return &o.Spec.Template }),
	workload(appsv1.SchemeGroupVersion.WithKind("DaemonSet"), "daemonsets", spec, []string{"Pod"},
		func() *appsv1.DaemonSet { return &appsv1.DaemonSet{} }, func() client.ObjectList { return &appsv1.DaemonSetList{} },
		func(o *appsv1.DaemonSet) *corev1.PodTemplateSpec { return &o.Spec.Template }),
	workload(batchv1.SchemeGroupVersion.WithKind("Job"), "jobs", spec, []string{"Pod"},
		func() *batchv1.Job { return &batchv1.Job{} }, func() client.ObjectList { return &batchv1.JobList{} },
		func(o *batchv1.Job) *corev1.PodTemplateSpec { return &o.Spec.Template }),
	workload(batchv1.SchemeGroupVersion.WithKind("CronJob"), "cronjobs", []string{"spec", "jobTemplate", "spec", "template"}, []string{"Job"},
		func() *batchv1.CronJob { return &batchv1.CronJob{} }, func() client.ObjectList { return &batchv1.CronJobList{} },
		func(o *batchv1.CronJob) *corev1.PodTemplateSpec { return &o.Spec.JobTemplate.Spec.Template }),
	{
		GVK: corev1.SchemeGroupVersion.WithKind("ReplicationController"), Resource: "replicationcontrollers", Role: RoleWorkload, Watched: true,
		New:          func() client.Object { return &corev1.ReplicationController{} },
		NewList:      func() client.ObjectList { return &corev1.ReplicationControllerList{} },
		TemplatePath: spec, Controls: []string{"Pod"},
		// The one template that is a pointer: absent stays absent.
		Template:    func(o client.Object) *corev1.PodTemplateSpec { return o.(*corev1.ReplicationController).Spec.Template },
		SetTemplate: func(o client.Object, t *corev1.PodTemplateSpec) { o.(*corev1.ReplicationController).Spec.Template = t },
	},
	{GVK: discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), Resource: "endpointslices", Role: RoleEndpoints, Watched: true,
		New: func() client.Object { return &discoveryv1.EndpointSlice{} }, NewList: func() client.ObjectList { return &discoveryv1.EndpointSliceList{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Endpoints"), Resource: "endpoints", Role: RoleEndpoints,
		New: func() client.Object { return &corev1.Endpoints{} }, NewList: func() client.ObjectList { return &corev1.EndpointsList{} }},
}

// workload is the entry of a kind whose template is a field of its spec.
func workload[T client.Object](gvk schema.GroupVersionKind, resource string, path, controls []string,
	newObj func() T, newList func() client.ObjectList, tmpl func(T) *corev1.PodTemplateSpec) Kind {
	return Kind{
		GVK: gvk, Resource: resource, Role: RoleWorkload, Watched: true,
		New: func() client.Object { return newObj() }, NewList: newList,
		TemplatePath: path, Controls: controls,
		Template: func(o client.Object) *corev1.PodTemplateSpec { return tmpl(o.(T)) },
		SetTemplate: func(o client.Object, t *corev1.PodTemplateSpec) {
			if t != nil {
				*tmpl(o.(T)) = *t
			}
		},
	}
}

var (
	byGVK  = map[schema.GroupVersionKind]*Kind{}
	byType = map[reflect.Type]*Kind{}
	byName = map[string]*Kind{}
)

func init() {
	for i := range All {
		k := &All[i]
		k.Exemplar = k.New()
		byGVK[k.GVK] = k
		byType[reflect.TypeOf(k.New())] = k
		byName[k.GVK.Kind] = k
	}
	// The manager's cache holds pods as podview.Pods.
	byType[reflect.TypeOf(&podview.Pod{})] = byName["Pod"]
}

// ByGVK returns the judged kind of this group, version and kind.
func ByGVK(gvk schema.GroupVersionKind) (*Kind, bool) {
	k, ok := byGVK[gvk]
	return k, ok
}

// ByName returns the judged kind of this name, whatever its version.
func ByName(kind string) (*Kind, bool) {
	k, ok := byName[kind]
	return k, ok
}

// Of returns the judged kind of an object by its Go type (objects read
// from a cache carry no TypeMeta).
func Of(obj runtime.Object) (*Kind, bool) {
	k, ok := byType[reflect.TypeOf(obj)]
	return k, ok
}

// New returns an empty object of a judged kind.
func New(gvk schema.GroupVersionKind) (client.Object, bool) {
	k, ok := byGVK[gvk]
	if !ok {
		return nil, false
	}
	return k.New(), true
}

// Workloads are the kinds with a pod template.
func Workloads() []*Kind { return filter(func(k *Kind) bool { return k.Role == RoleWorkload }) }

// Watched are the kinds the controllers watch and the audit lists.
func Watched() []*Kind { return filter(func(k *Kind) bool { return k.Watched }) }

func filter(keep func(*Kind) bool) []*Kind {
	var out []*Kind
	for i := range All {
		if keep(&All[i]) {
			out = append(out, &All[i])
		}
	}
	return out
}

// Controls reports whether a workload of kind owner controls objects of
// kind child, and the API group the owner's reference must name.
func Controls(owner, child string) (group string, ok bool) {
	k, found := byName[owner]
	if !found {
		return "", false
	}
	for _, c := range k.Controls {
		if c == child {
			return k.GVK.Group, true
		}
	}
	return "", false
}
