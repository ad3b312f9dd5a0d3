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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/internal/workloads"
)

// errNotSynced answers reviews that arrive before the policies are loaded;
// readiness keeps them rare.
var errNotSynced = errors.New("loopguard is starting and has not loaded its policies yet; retry in a few seconds")

// Path is where the exposure webhook is served. Its configuration is
// generated into config/webhook from the markers beside the kinds table
// (internal/kinds): one rule per judged kind, v1 only; matchPolicy
// Equivalent makes the API server convert other versions to it.
const Path = "/validate-exposure"

// ExposureValidator refuses Pods, workloads, Services and hand-written
// EndpointSlices and Endpoints that would expose a loopback-only port.
type ExposureValidator struct {
	// Index holds the compiled policies.
	Index *policyindex.Index
	// Reader reads pods and Services from the informer cache; it is never
	// an API client, so a review makes no API call but Namespaces' (for a
	// namespace newer than the cache, bounded).
	Reader client.Reader
	// Namespaces reads the labels of a namespace the index has not seen
	// yet from the API server (policyindex.Index.EnvLive); nil: never.
	Namespaces policyindex.LabelsFunc
	Log        logr.Logger
}

var _ admission.Handler = &ExposureValidator{}

// newObject returns an empty object of a kind the webhook is registered
// for (internal/kinds).
func newObject(gvk schema.GroupVersionKind) (runtime.Object, bool) {
	return kinds.New(gvk)
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
	env, err := v.Index.EnvLive(ctx, req.Namespace, v.Namespaces)
	if err != nil {
		return admission.Errored(http.StatusServiceUnavailable, err), decisionError
	}
	if env.Empty() && !v.judgedAcrossNamespaces(obj) {
		return admission.Allowed(""), decisionAllow
	}
	obj, err = decodeRequestObject(req.Object, obj)
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
	snap, err := v.gather(ctx, env, obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), decisionError
	}
	d := rules.Review(rules.ReviewRequest{
		Operation: rules.Operation(req.Operation), Object: obj, OldObject: old,
		Requester: rules.Requester{Username: req.UserInfo.Username, Groups: req.UserInfo.Groups},
		Done:      ctx.Done(),
	}, snap)
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

// gather fills the snapshot the rules judge obj against from the cache,
// only what can matter: a Service's selected pods and the namespace's
// workloads, the namespace's Services for a protected pod (template), the
// pods behind endpoints. The same snapshot serves the old object of an
// update: what the old one reached outside it cannot make the new one's
// findings new.
func (v *ExposureValidator) gather(ctx context.Context, env *rules.Env, obj runtime.Object) (rules.Snapshot, error) {
	snap := rules.Snapshot{Env: env}
	in := []client.ListOption{client.InNamespace(env.Namespace), client.UnsafeDisableDeepCopy}
	if judgedByAddress(obj) {
		// Addresses are matched to pods of any namespace by targetRef
		// and by IP, each judged by its namespace's policies (with the
		// labels of a namespace the index has not seen yet read live,
		// as the request's own).
		pods, err := addrindex.PodsNamed(ctx, v.Reader, obj)
		if err != nil {
			return snap, err
		}
		envs := map[string]*rules.Env{env.Namespace: env}
		for _, p := range pods {
			if envs[p.Namespace] == nil {
				if envs[p.Namespace], err = v.Index.EnvLive(ctx, p.Namespace, v.Namespaces); err != nil {
					return snap, err
				}
			}
		}
		snap.Resolver = rules.NewResolver(pods, func(ns string) *rules.Env {
			if e := envs[ns]; e != nil {
				return e
			}
			return v.Index.Env(ns)
		})
		return snap, nil
	}
	switch o := obj.(type) {
	case *corev1.Service:
		if len(o.Spec.Selector) == 0 || o.Spec.Type == corev1.ServiceTypeExternalName {
			return snap, nil
		}
		pods, err := clusterindex.PodsMatching(ctx, v.Reader, env.Namespace, labels.SelectorFromSet(o.Spec.Selector))
		if err != nil {
			return snap, fmt.Errorf("failed to read pods from cache: %w", err)
		}
		snap.Pods = pods
		// Templates too: a port only a workload declares (one scaled to
		// zero, one whose pods are not created yet) is as protected.
		wls, err := workloads.ListAll(ctx, v.Reader, env.Namespace, client.UnsafeDisableDeepCopy)
		if err != nil {
			return snap, fmt.Errorf("failed to list workloads from cache: %w", err)
		}
		snap.Workloads = wls
		return snap, nil
	}
	if tmpl, ok := rules.PodTemplateOf(obj); ok && len(env.MatchingPolicies(labels.Set(tmpl.Labels))) > 0 {
		var svcs corev1.ServiceList
		if err := v.Reader.List(ctx, &svcs, in...); err != nil {
			return snap, fmt.Errorf("failed to list services from cache: %w", err)
		}
		for i := range svcs.Items {
			snap.Services = append(snap.Services, &svcs.Items[i])
		}
	}
	return snap, nil
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
