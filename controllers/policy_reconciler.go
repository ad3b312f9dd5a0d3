package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// policyObject is what both policy kinds have in common.
type policyObject interface {
	client.Object
	PolicySpec() *v1alpha1.LoopbackServiceSpec
	PolicyStatus() *v1alpha1.LoopbackServiceStatus
}

// namespaceInScope is one namespace a policy applies in.
type namespaceInScope struct {
	name   string
	labels labels.Set
	// terminating namespaces refuse new objects; their NetworkPolicy, if
	// any, is kept until their pods are gone (FinalizerPodsGone).
	terminating bool
}

// maxEventsPerReconcile bounds the violation Events one reconcile emits, so
// a policy applied to a namespace full of violations cannot flood etcd.
const maxEventsPerReconcile = 10

// policyReconciler holds what both reconcilers share: the phases of
// enforcing one compiled policy over the namespaces it applies in.
type policyReconciler struct {
	client        client.Client
	reader        client.Reader
	scheme        *runtime.Scheme
	mapper        meta.RESTMapper
	recorder      events.EventRecorder
	auditInterval time.Duration
	// index is the webhook's policy index, a compile cache for the
	// policies a managed NetworkPolicy must keep the ports of closed.
	index *policyindex.Index
}

// staleCacheRetry is how soon a reconcile that lost the optimistic lock on
// status runs again: the informer is a watch event behind, milliseconds.
const staleCacheRetry = 200 * time.Millisecond

// reconcilePolicy enforces and audits obj in the namespaces given, patches
// its status when it changed, and asks to be called again after the audit
// interval (the periodic review).
func (r *policyReconciler) reconcilePolicy(ctx context.Context, obj policyObject, p *rules.Policy, compileErr error, namespaces []namespaceInScope, clusterScoped bool, extra ...func(*outcome)) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	before := obj.DeepCopyObject().(policyObject)
	spec := obj.PolicySpec()
	o := &outcome{compileErr: compileErr, mode: spec.NetworkPolicy}
	if o.mode == "" {
		o.mode = v1alpha1.NetworkPolicyManaged
	}
	for _, f := range extra {
		if f != nil {
			f(o)
		}
	}
	if compileErr == nil {
		o.protected = portsString(p)
		o.reconcileErr = r.enforce(ctx, obj, p, namespaces, clusterScoped, o)
	}

	status := computeStatus(*before.PolicyStatus(), obj.GetGeneration(), o)
	r.recordMetrics(p, obj, o)
	if !equality.Semantic.DeepEqual(*before.PolicyStatus(), status) {
		*obj.PolicyStatus() = status
		// Optimistic lock: a reconcile that read the policy from a cache
		// not yet holding this controller's last status write must not
		// write, nor announce (Events are sent for what is new since the
		// status read), what the previous reconcile already did.
		if err := r.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) && o.reconcileErr == nil {
				log.V(1).Info("the cached policy is older than its status: reconciling again once the cache caught up")
				return ctrl.Result{RequeueAfter: staleCacheRetry}, nil
			}
			if apierrors.IsNotFound(err) {
				return ctrl.Result{}, nil // deleted meanwhile; its deletion event ends the story
			}
			return ctrl.Result{}, errors.Join(o.reconcileErr, fmt.Errorf("failed to patch status: %w", err))
		}
		log.V(1).Info("status updated", "matchedPods", o.matchedPods, "violations", len(o.findings))
	}
	r.announce(obj, before.PolicyStatus(), &status, o)
	if o.reconcileErr != nil {
		return ctrl.Result{}, o.reconcileErr
	}
	if err := o.failuresErr(); err != nil {
		// Retried with backoff: the squatter may rename its object.
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.auditInterval}, nil
}

// enforce keeps the managed NetworkPolicies and observes every namespace.
// A failure in one namespace (a NetworkPolicy of the managed name that
// someone else owns, an API error) is recorded for that namespace in o and
// the others carry on: one squatted name must not leave every namespace
// after it unenforced and unaudited.
func (r *policyReconciler) enforce(ctx context.Context, obj policyObject, p *rules.Policy, namespaces []namespaceInScope, clusterScoped bool, o *outcome) error {
	spec := obj.PolicySpec()
	npName := managedNetworkPolicyName(clusterScoped, obj.GetName())
	view := newRuntimeView(r.reader, time.Now())
	for _, ns := range namespaces {
		key := types.NamespacedName{Namespace: ns.name, Name: npName}
		if ns.terminating {
			continue
		}
		o.namespaces++
		if o.mode != v1alpha1.NetworkPolicyDisabled { // Managed, and Admin which keeps them too
			desired, err := r.desiredNetworkPolicy(ctx, p, spec.PodSelector, ns.name, ns.labels)
			var res controllerutil.OperationResult
			var drifted bool
			if err != nil {
				err = fmt.Errorf("failed to gather the policies of namespace %s: %w", ns.name, err)
			} else {
				res, drifted, err = ensureNetworkPolicy(ctx, r.client, r.scheme, obj, key, policyLabelValue(clusterScoped, obj.GetName()), desired)
			}
			switch {
			case err != nil:
				o.fail(ns.name, err) // and audit it all the same
			case res == controllerutil.OperationResultCreated:
				r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, "NetworkPolicyCreated", "Apply", "created NetworkPolicy %s to block ingress to %s", key, o.protected)
			case res == controllerutil.OperationResultUpdated && drifted:
				r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "NetworkPolicyRepaired", "Apply", "NetworkPolicy %s had drifted from what the policy requires and was restored", key)
			case res == controllerutil.OperationResultUpdated:
				r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, "NetworkPolicyUpdated", "Apply", "updated NetworkPolicy %s: it keeps closed the ports of every policy whose pods may be this policy's", key)
			}
			if err == nil {
				name := key.Name
				if clusterScoped {
					name = key.String()
				}
				o.networkPolicies = append(o.networkPolicies, name)
			}
		} else if removed, err := removeNetworkPolicy(ctx, r.client, obj, key); err != nil {
			o.fail(ns.name, err)
		} else if removed {
			r.recorder.Eventf(obj, nil, corev1.EventTypeNormal, "NetworkPolicyRemoved", "Delete", "removed NetworkPolicy %s: spec.networkPolicy is Disabled", key)
		}
		obs, err := observe(ctx, r.reader, p, ns.name, ns.labels)
		if err != nil {
			o.fail(ns.name, fmt.Errorf("failed to audit namespace %s: %w", ns.name, err))
			continue
		}
		if err := view.observe(ctx, p, obs); err != nil {
			o.fail(ns.name, fmt.Errorf("failed to read runtime findings in namespace %s: %w", ns.name, err))
			continue
		}
		o.add(obs)
	}
	return r.observeNodeMates(ctx, o)
}

// announce emits Events for what changed: new violations (bounded), and
// NetworkPolicy conflicts when they appear.
func (r *policyReconciler) announce(obj policyObject, old, cur *v1alpha1.LoopbackServiceStatus, o *outcome) {
	if o.compileErr != nil {
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "InvalidPolicy", "Compile", "the policy is not enforced: %v", o.compileErr)
		return
	}
	for i, v := range newViolations(old.Violations, cur.Violations) {
		if i == maxEventsPerReconcile {
			break
		}
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Violation", "Audit", "%s", v.Message)
	}
	r.announceRuntime(obj, old, cur)
	r.announceFailures(obj, old, cur, o)
	r.announceNodeMates(obj, old, cur)
	// Once per change of what the condition says (new conflicts, or a
	// mode change), never on every resync.
	prev := meta.FindStatusCondition(old.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
	now := meta.FindStatusCondition(cur.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
	if len(o.conflicts) > 0 && (prev == nil || now == nil || prev.Reason != now.Reason || prev.Message != now.Message) {
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "ConflictingNetworkPolicy", "Audit", "NetworkPolicies re-open protected ports: %s", describeConflicts(o.conflicts))
	}
}

func (r *policyReconciler) recordMetrics(p *rules.Policy, obj policyObject, o *outcome) {
	kind := rules.KindLoopbackService
	if obj.GetNamespace() == "" {
		kind = rules.KindClusterLoopbackService
	}
	l := prometheus.Labels{"policy_kind": kind, "policy_namespace": obj.GetNamespace(), "policy": obj.GetName()}
	metrics.Violations.DeletePartialMatch(l)
	if o.compileErr != nil || o.reconcileErr != nil {
		return
	}
	byReason := map[string]int{}
	for _, f := range o.findings {
		byReason[f.Reason]++
	}
	for reason, n := range byReason {
		metrics.Violations.WithLabelValues(kind, obj.GetNamespace(), obj.GetName(), reason).Set(float64(n))
	}
	metrics.HostNetworkPods.With(l).Set(float64(len(o.hostNetworkPods)))
	metrics.NodeMatePods.With(l).Set(float64(len(o.nodeMates)))
	recordRuntimeMetrics(l, o)
}

// forgetMetrics drops the series of a deleted policy.
func forgetMetrics(kind, namespace, name string) {
	l := prometheus.Labels{"policy_kind": kind, "policy_namespace": namespace, "policy": name}
	metrics.Violations.DeletePartialMatch(l)
	metrics.HostNetworkPods.Delete(l)
	metrics.NodeMatePods.Delete(l)
	metrics.PodsListeningBeyondLoopback.Delete(l)
}

// policyLabelValue is the value of the loopguard.io/policy label on managed
// NetworkPolicies; names too long for a label value are hashed.
func policyLabelValue(clusterScoped bool, name string) string {
	v := name
	if clusterScoped {
		v = "cluster." + name
	}
	if len(v) <= 63 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return v[:46] + "-" + hex.EncodeToString(sum[:])[:16]
}
