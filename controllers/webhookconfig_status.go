package controllers

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// The Enforced condition is computed here from what the written
// configuration covers. The policy reconcilers carry it in their own
// status write (RegistrationView); this controller patches it only where
// a policy's last status does not hold it yet, by a merge patch at the
// cached resourceVersion (optimistic lock): whichever writes second on a
// stale cache gets a conflict and retries, neither drops the other's
// conditions. A policy its reconciler has not written yet
// (observedGeneration 0) is left to that first write, which reads the view.

// enforcedCondition is the Enforced condition, for the policy's
// generation, of a policy whose status is st for its coverage. A policy
// whose selector does not compile is judged by nothing, registered or not.
func enforcedCondition(generation int64, st *v1alpha1.LoopbackServiceStatus, cov webhookconfig.Coverage) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionEnforced, ObservedGeneration: generation,
		Status: metav1.ConditionFalse, Reason: cov.Reason, Message: cov.Message}
	if ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); ready != nil &&
		ready.Reason == v1alpha1.ReasonInvalidSelector {
		c.Reason, c.Message = v1alpha1.ReasonInvalidSelector, ready.Message
		return c
	}
	switch {
	case cov.Covered:
		c.Status = metav1.ConditionTrue
	case cov.Reason == webhookconfig.ReasonNamespaceExcluded:
		c.Reason = v1alpha1.ReasonNamespaceExcluded
	case cov.Reason == webhookconfig.ReasonInvalidSelector:
		c.Reason = v1alpha1.ReasonInvalidSelector
	}
	return c
}

// setEnforced records the coverage of the configuration just written (or
// found equal) and writes each policy's Enforced condition where its
// status lags.
func (r *WebhookConfigReconciler) setEnforced(ctx context.Context, objs map[webhookconfig.Key]enforcedObject, coverage map[webhookconfig.Key]webhookconfig.Coverage) error {
	generations := make(map[webhookconfig.Key]int64, len(objs))
	for k, obj := range objs {
		generations[k] = obj.GetGeneration()
	}
	r.reg.View.setCoverage(coverage, generations)
	var errs []error
	for k, obj := range objs {
		cov, ok := coverage[k]
		if !ok || r.leftToReconciler(obj) {
			continue
		}
		errs = append(errs, r.patchEnforced(ctx, obj, enforcedCondition(obj.GetGeneration(), obj.PolicyStatus(), cov)))
	}
	return errors.Join(errs...)
}

// leftToReconciler: the policy reconciler has not written this policy's
// status yet; its first write carries Enforced from the view. Without a
// view (no policy reconciler shares it) nothing is left to it.
func (r *WebhookConfigReconciler) leftToReconciler(obj enforcedObject) bool {
	return r.reg.View != nil && obj.PolicyStatus().ObservedGeneration == 0
}

// setPending records and reports why nothing was registered
// (pendingCondition says on which policies).
func (r *WebhookConfigReconciler) setPending(ctx context.Context, objs map[webhookconfig.Key]enforcedObject, reason, msg string) error {
	r.reg.View.setPending(reason, msg)
	var errs []error
	for _, obj := range objs {
		if c, ok := pendingCondition(obj, obj.PolicyStatus(), reason, msg); ok && !r.leftToReconciler(obj) {
			errs = append(errs, r.patchEnforced(ctx, obj, c))
		}
	}
	err := errors.Join(errs...)
	if err != nil && apierrors.IsConflict(err) {
		return nil // the next reconcile (requeued by its caller, or the watch) retries
	}
	return err
}

// patchEnforced patches the condition when it changed.
func (r *WebhookConfigReconciler) patchEnforced(ctx context.Context, obj enforcedObject, c metav1.Condition) error {
	if old := meta.FindStatusCondition(obj.PolicyStatus().Conditions, c.Type); old != nil && old.Status == c.Status &&
		old.Reason == c.Reason && old.Message == c.Message && old.ObservedGeneration == c.ObservedGeneration {
		return nil
	}
	before := obj.DeepCopyObject().(enforcedObject)
	patched := obj.DeepCopyObject().(enforcedObject)
	meta.SetStatusCondition(&patched.PolicyStatus().Conditions, c)
	if err := r.client.Status().Patch(ctx, patched, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to set the Enforced condition of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	return nil
}
