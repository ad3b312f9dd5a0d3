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

// The Enforced condition is this controller's alone. It is written by a
// merge patch of the status at the cached resourceVersion (optimistic
// lock), like the policy reconciler's status writes, which start from the
// cached status and so carry Enforced along unchanged: whichever writes
// second on a stale cache gets a conflict and retries, neither drops the
// other's conditions.

// enforcedCondition is the Enforced condition of obj for its coverage
// (nil: the policy is missing from the registration's view). A policy
// whose selector does not compile is judged by nothing, registered or not.
func enforcedCondition(obj enforcedObject, cov webhookconfig.Coverage) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionEnforced, ObservedGeneration: obj.GetGeneration(),
		Status: metav1.ConditionFalse, Reason: cov.Reason, Message: cov.Message}
	if ready := meta.FindStatusCondition(obj.PolicyStatus().Conditions, v1alpha1.ConditionReady); ready != nil &&
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

// setEnforced writes each policy's Enforced condition for the coverage of
// the configuration just written (or found equal).
func (r *WebhookConfigReconciler) setEnforced(ctx context.Context, objs map[webhookconfig.Key]enforcedObject, coverage map[webhookconfig.Key]webhookconfig.Coverage) error {
	var errs []error
	for k, obj := range objs {
		cov, ok := coverage[k]
		if !ok {
			continue
		}
		errs = append(errs, r.patchEnforced(ctx, obj, enforcedCondition(obj, cov)))
	}
	return errors.Join(errs...)
}

// setPending reports why nothing was registered: on every policy when
// the configuration is missing (nothing is judged), otherwise only on
// those not already Enforced (a new leader whose server does not serve
// yet leaves what its predecessor registered in place).
func (r *WebhookConfigReconciler) setPending(ctx context.Context, objs map[webhookconfig.Key]enforcedObject, reason, msg string) error {
	var errs []error
	for _, obj := range objs {
		if reason != v1alpha1.ReasonWebhookConfigurationMissing &&
			meta.IsStatusConditionTrue(obj.PolicyStatus().Conditions, v1alpha1.ConditionEnforced) {
			continue
		}
		errs = append(errs, r.patchEnforced(ctx, obj, metav1.Condition{Type: v1alpha1.ConditionEnforced,
			Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration()}))
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
