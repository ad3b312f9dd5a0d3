// Package webhooks holds loopguard's admission handlers. They decode the
// object, gather what the exposure rules need from the informer cache, call
// rules.Review once and render its decision as an admission response.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/internal/workloads"
)

// errNotSynced answers reviews that arrive before the policies are loaded;
// readiness keeps them rare.
var errNotSynced = errors.New("loopguard is starting and has not loaded its policies yet; retry in a few seconds")

// Path is where the exposure webhook is served.
const Path = "/validate-exposure"

// The webhook configuration, generated into config/webhook. Every rule uses
// the v1 version only; matchPolicy Equivalent makes the API server convert
// other versions to it.
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="",resources=pods,verbs=create;update,versions=v1,name=pods.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="",resources=services,verbs=create;update,versions=v1,name=services.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups=apps;batch,resources=deployments;replicasets;statefulsets;daemonsets;jobs;cronjobs,verbs=create;update,versions=v1,name=workloads.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="",resources=replicationcontrollers,verbs=create;update,versions=v1,name=replicationcontrollers.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-exposure,mutating=false,failurePolicy=fail,sideEffects=None,matchPolicy=Equivalent,groups="";discovery.k8s.io,resources=endpoints;endpointslices,verbs=create;update,versions=v1,name=endpoints.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// ExposureValidator refuses Pods, workloads, Services and hand-written
// EndpointSlices and Endpoints that would expose a loopback-only port.
type ExposureValidator struct {
	// Index holds the compiled policies.
	Index *policyindex.Index
	// Reader reads pods and Services from the informer cache; it is never
	// an API client, so a review makes no API call.
	Reader client.Reader
	Log    logr.Logger
}

var _ admission.Handler = &ExposureValidator{}

// newObject maps the kinds the webhook is registered for to their types.
func newObject(gvk schema.GroupVersionKind) (runtime.Object, bool) {
	switch gvk {
	case corev1.SchemeGroupVersion.WithKind("Pod"):
		return &corev1.Pod{}, true
	case corev1.SchemeGroupVersion.WithKind("Service"):
		return &corev1.Service{}, true
	case corev1.SchemeGroupVersion.WithKind("ReplicationController"):
		return &corev1.ReplicationController{}, true
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		return &appsv1.Deployment{}, true
	case appsv1.SchemeGroupVersion.WithKind("ReplicaSet"):
		return &appsv1.ReplicaSet{}, true
	case appsv1.SchemeGroupVersion.WithKind("StatefulSet"):
		return &appsv1.StatefulSet{}, true
	case appsv1.SchemeGroupVersion.WithKind("DaemonSet"):
		return &appsv1.DaemonSet{}, true
	case batchv1.SchemeGroupVersion.WithKind("Job"):
		return &batchv1.Job{}, true
	case batchv1.SchemeGroupVersion.WithKind("CronJob"):
		return &batchv1.CronJob{}, true
	case discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"):
		return &discoveryv1.EndpointSlice{}, true
	case corev1.SchemeGroupVersion.WithKind("Endpoints"):
		return &corev1.Endpoints{}, true
	}
	return nil, false
}

// Handle implements admission.Handler.
func (v *ExposureValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, decision := v.review(ctx, req)
	metrics.AdmissionDuration.WithLabelValues(req.Kind.Kind).Observe(time.Since(start).Seconds())
	metrics.AdmissionDecisions.WithLabelValues(req.Kind.Kind, string(req.Operation), req.Namespace, decision).Inc()
	return resp
}

// Decisions as reported in metrics and logs.
const (
	decisionAllow = "allow"
	decisionDeny  = "deny"
	decisionWarn  = "warn"
	decisionAudit = "audit"
	decisionError = "error"
)

func (v *ExposureValidator) review(ctx context.Context, req admission.Request) (admission.Response, string) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed(""), decisionAllow
	}
	gvk := schema.GroupVersionKind(req.Kind)
	obj, known := newObject(gvk)
	if !known {
		// Registered for a kind we do not judge: a configuration error,
		// not the user's; let the request through.
		return admission.Allowed("loopguard does not judge " + req.Kind.String()), decisionAllow
	}
	if !v.Index.Synced() {
		return admission.Errored(http.StatusServiceUnavailable, errNotSynced), decisionError
	}
	env := v.Index.Env(req.Namespace)
	if env.Empty() && !v.judgedAcrossNamespaces(obj) {
		return admission.Allowed(""), decisionAllow
	}
	obj, err := decodeRequestObject(req.Object, obj)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("failed to decode %s: %w", req.Kind.Kind, err)), decisionError
	}
	var old runtime.Object
	if req.Operation == admissionv1.Update {
		old, _ = newObject(gvk)
		if old, err = decodeRequestObject(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("failed to decode old %s: %w", req.Kind.Kind, err)), decisionError
		}
	}
	cluster, err := v.gather(ctx, env, obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), decisionError
	}
	d := rules.Review(env, rules.ReviewRequest{
		Operation: rules.Operation(req.Operation), Object: obj, OldObject: old,
		Requester: rules.Requester{Username: req.UserInfo.Username, Groups: req.UserInfo.Groups},
		Done:      ctx.Done(),
	}, cluster)
	if d.Action == "" {
		return admission.Allowed(""), decisionAllow
	}
	v.logDecision(req, d)
	countPolicyFindings(d.Findings)
	switch d.Action {
	case v1alpha1.ActionDeny:
		return admission.Denied(d.Denial).WithWarnings(d.Warnings...), decisionDeny
	case v1alpha1.ActionWarn:
		return admission.Allowed("").WithWarnings(d.Warnings...), decisionWarn
	default:
		return admission.Allowed(""), decisionAudit
	}
}

// gather reads what the rules need to judge obj from the cache, only what
// can matter: a Service's selected pods and the namespace's workloads, the
// namespace's Services for a protected pod (template), the pods behind
// endpoints. The same snapshot serves the old object of an update: what
// the old one reached outside it cannot make the new one's findings new.
func (v *ExposureValidator) gather(ctx context.Context, env *rules.Env, obj runtime.Object) (rules.Cluster, error) {
	var cluster rules.Cluster
	listPods := func(opts ...client.ListOption) error {
		var pods corev1.PodList
		if err := v.Reader.List(ctx, &pods, append(opts, client.InNamespace(env.Namespace), client.UnsafeDisableDeepCopy)...); err != nil {
			return fmt.Errorf("failed to list pods from cache: %w", err)
		}
		cluster.Pods = make([]*corev1.Pod, len(pods.Items))
		for i := range pods.Items {
			cluster.Pods[i] = &pods.Items[i]
		}
		return nil
	}
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice, *corev1.Endpoints:
		// Addresses are matched to pods of any namespace by targetRef
		// and by IP.
		return v.endpointsCluster(ctx, obj)
	case *corev1.Service:
		if len(o.Spec.Selector) == 0 || o.Spec.Type == corev1.ServiceTypeExternalName {
			return cluster, nil
		}
		if err := listPods(client.MatchingLabels(o.Spec.Selector)); err != nil {
			return cluster, err
		}
		// Templates too: a port only a workload declares (one scaled to
		// zero, one whose pods are not created yet) is as protected.
		wls, err := workloads.List(ctx, v.Reader, env.Namespace, client.UnsafeDisableDeepCopy)
		if err != nil {
			return cluster, fmt.Errorf("failed to list workloads from cache: %w", err)
		}
		cluster.Workloads = wls
		return cluster, nil
	}
	if tmpl, ok := rules.PodTemplateOf(obj); ok && len(env.MatchingPolicies(labels.Set(tmpl.Labels))) > 0 {
		var svcs corev1.ServiceList
		if err := v.Reader.List(ctx, &svcs, client.InNamespace(env.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return cluster, fmt.Errorf("failed to list services from cache: %w", err)
		}
		cluster.Services = make([]*corev1.Service, len(svcs.Items))
		for i := range svcs.Items {
			cluster.Services[i] = &svcs.Items[i]
		}
	}
	return cluster, nil
}

// decodeRequestObject returns the object of a request: the one
// ReviewHandler decoded while reading the review when there is one of
// obj's type, else obj decoded from the raw bytes.
func decodeRequestObject(ext runtime.RawExtension, obj runtime.Object) (runtime.Object, error) {
	if ext.Object != nil && reflect.TypeOf(ext.Object) == reflect.TypeOf(obj) {
		return ext.Object, nil
	}
	return obj, decode(ext.Raw, obj)
}

func decode(raw []byte, obj runtime.Object) error {
	if len(raw) == 0 {
		return fmt.Errorf("the request carries no object")
	}
	if ok, err := decodeSlim(raw, obj); ok {
		return err
	}
	return json.Unmarshal(raw, obj)
}

// logDecision records every decision other than a plain allow with who
// asked, for what, and which policies decided: the audit trail.
func (v *ExposureValidator) logDecision(req admission.Request, d rules.Decision) {
	refs := map[string]bool{}
	var policies, msgs []string
	for _, f := range d.Findings {
		msgs = append(msgs, f.Message())
		for _, r := range f.Policies {
			if !refs[r.String()] {
				refs[r.String()] = true
				policies = append(policies, r.String())
			}
		}
	}
	dryRun := req.DryRun != nil && *req.DryRun
	v.Log.Info("admission decision", "decision", strings.ToLower(string(d.Action)),
		"user", req.UserInfo.Username, "groups", req.UserInfo.Groups,
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
		"operation", req.Operation, "dryRun", dryRun, "policies", policies, "findings", msgs, "moreFindings", d.Omitted)
}
