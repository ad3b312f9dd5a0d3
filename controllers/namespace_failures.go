package controllers

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// maxNamespacesInMessage bounds the namespaces a condition or Event names;
// the rest are counted.
const maxNamespacesInMessage = 10

// namespaceFailure is what went wrong for one policy in one namespace; the
// reconcile carried on with the others.
type namespaceFailure struct {
	namespace string
	err       error
}

// fail records a failure in one namespace.
func (o *outcome) fail(namespace string, err error) {
	o.failures = append(o.failures, namespaceFailure{namespace: namespace, err: err})
}

// failuresErr joins the namespace failures, for the reconcile's result (so
// that it is retried), or nil.
func (o *outcome) failuresErr() error {
	if len(o.failures) == 0 {
		return nil
	}
	errs := make([]error, len(o.failures))
	for i, f := range o.failures {
		errs[i] = f.err
	}
	return errors.Join(errs...)
}

// nameTakenErrors returns the failures that are a taken name, sorted by
// NetworkPolicy.
func (o *outcome) nameTakenErrors() []*NameTakenError {
	var out []*NameTakenError
	for _, f := range o.failures {
		var taken *NameTakenError
		if errors.As(f.err, &taken) {
			out = append(out, taken)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// failedNamespaces returns the namespaces with a failure, sorted, once each.
func (o *outcome) failedNamespaces() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range o.failures {
		if !seen[f.namespace] {
			seen[f.namespace] = true
			out = append(out, f.namespace)
		}
	}
	sort.Strings(out)
	return out
}

// bounded joins at most maxNamespacesInMessage items and counts the rest.
func bounded(items []string) string {
	if len(items) <= maxNamespacesInMessage {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:maxNamespacesInMessage], ", "), len(items)-maxNamespacesInMessage)
}

// partialFailureMessage is the Ready condition's message when some
// namespaces failed: which, and the first error of each (bounded).
func (o *outcome) partialFailureMessage() string {
	nss := o.failedNamespaces()
	first := map[string]error{}
	for _, f := range o.failures {
		if _, ok := first[f.namespace]; !ok {
			first[f.namespace] = f.err
		}
	}
	parts := make([]string, 0, min(len(nss), maxNamespacesInMessage))
	for _, ns := range nss[:min(len(nss), maxNamespacesInMessage)] {
		parts = append(parts, fmt.Sprintf("%s: %v", ns, first[ns]))
	}
	msg := fmt.Sprintf("enforced in %d of %d namespaces; failed in %d (retrying): %s", o.namespaces-len(nss), o.namespaces, len(nss), strings.Join(parts, "; "))
	if len(nss) > maxNamespacesInMessage {
		msg += fmt.Sprintf("; and %d more namespaces", len(nss)-maxNamespacesInMessage)
	}
	return msg
}

// nameTakenMessage is the NetworkPolicyEffective condition's message when
// the managed name is taken somewhere: where, and (bounded) what to do.
func nameTakenMessage(taken []*NameTakenError, protected string) string {
	keys := make([]string, len(taken))
	var advice []string
	for i, e := range taken {
		keys[i] = e.Key.String()
		if a := e.advice(); !slices.Contains(advice, a) && len(advice) < 3 {
			advice = append(advice, a)
		}
	}
	return fmt.Sprintf("ingress to %s is not blocked in %d namespaces, where a NetworkPolicy of the managed name exists and is not owned by this policy (loopguard does not take over someone else's object): %s%s",
		protected, len(taken), bounded(keys), "; "+strings.Join(advice, "; "))
}

// announceFailures emits a Warning Event for each NetworkPolicy of the
// managed name taken by someone else, when the condition's message changed
// (a new namespace, or the first time), bounded like violations.
func (r *policyReconciler) announceFailures(obj policyObject, old, cur *v1alpha1.LoopbackServiceStatus, o *outcome) {
	taken := o.nameTakenErrors()
	if len(taken) == 0 {
		return
	}
	prev := meta.FindStatusCondition(old.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
	now := meta.FindStatusCondition(cur.Conditions, v1alpha1.ConditionNetworkPolicyEffective)
	if prev != nil && now != nil && prev.Reason == now.Reason && prev.Message == now.Message {
		return
	}
	for i, e := range taken {
		if i == maxEventsPerReconcile {
			break
		}
		// The NetworkPolicy as the related object: Events that differ only
		// in their note would be merged into one series.
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: e.Key.Namespace, Name: e.Key.Name}}
		r.recorder.Eventf(obj, np, corev1.EventTypeWarning, v1alpha1.ReasonNetworkPolicyNameTaken, "Apply",
			"%v: until then ingress to %s is not blocked in namespace %s", e, o.protected, e.Key.Namespace)
	}
}
