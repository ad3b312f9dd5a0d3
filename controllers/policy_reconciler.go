package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/kinds"
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
	// registration gives the Enforced condition this reconciler writes
	// with the rest of status (nil: the registration controller writes it).
	registration *RegistrationView
	// now is the clock the runtime view judges reports stale by.
	now func() time.Time
	// memo keeps each policy's audit of each namespace until something
	// it read changes; metrics the per-policy series each policy has.
	memo      *auditMemo
	nodeMates *nodeMateMemo
	metrics   *policyMetrics
	// specs: what the managed NetworkPolicies were last written with.
	specs *specsWritten
}

// forget drops what is kept of a deleted policy: its metrics and audits.
func (r *policyReconciler) forget(ref rules.PolicyRef) {
	r.metrics.forget(ref)
	r.memo.forget(ref)
	r.nodeMates.forget(ref)
	r.specs.forget(ref)
}

// staleCacheRetry is how soon a reconcile that lost the optimistic lock on
// status runs again: the informer is a watch event behind, milliseconds.
const staleCacheRetry = 200 * time.Millisecond

// reconcile runs the phases of one policy's reconcile over s, then, in
// one deferred step whatever the phases did, computes status from what
// they found, patches it when it semantically changed (an unchanged
// outcome writes nothing), records metrics and announces what is new. It
// asks to be called again after the audit interval (the periodic review).
func (r *policyReconciler) reconcile(ctx context.Context, s *policyScope, phases []phase) (res ctrl.Result, reterr error) {
	defer func() {
		s.reconcileErr = reterr
		res, reterr = r.patchStatus(ctx, s)
	}()
	return ctrl.Result{}, runPhases(ctx, s, phases)
}

// patchStatus is the reconcile's one status write, and what follows it.
func (r *policyReconciler) patchStatus(ctx context.Context, s *policyScope) (ctrl.Result, error) {
	obj, before := s.policy, s.before
	if s.compileErr != nil {
		r.memo.forget(s.ref()) // nothing to audit until its spec changes
	}
	status := computeStatus(*before.PolicyStatus(), obj.GetGeneration(), &s.outcome)
	if c, ok := r.registration.condition(obj, &status); ok {
		meta.SetStatusCondition(&status.Conditions, c)
	}
	r.metrics.record(s.ref(), &s.outcome)
	if !equality.Semantic.DeepEqual(*before.PolicyStatus(), status) {
		*obj.PolicyStatus() = status
		// Optimistic lock: a reconcile that read the policy from a cache
		// not yet holding the last status write (this controller's, or the
		// runtime controller's) must not write, nor announce (Events are
		// sent for what is new since the status read), what the previous
		// reconcile already did.
		if err := r.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) && s.reconcileErr == nil {
				s.log.V(1).Info("the cached policy is older than its status: reconciling again once the cache caught up")
				return ctrl.Result{RequeueAfter: staleCacheRetry}, nil
			}
			if apierrors.IsNotFound(err) {
				return ctrl.Result{}, nil // deleted meanwhile; its deletion event ends the story
			}
			return ctrl.Result{}, errors.Join(s.reconcileErr, fmt.Errorf("failed to patch status: %w", err))
		}
		s.log.V(1).Info("status updated", "matchedPods", s.matchedPods, "violations", len(s.findings))
	}
	r.announce(s, &status)
	if s.reconcileErr != nil {
		return ctrl.Result{}, s.reconcileErr
	}
	if err := s.failuresErr(); err != nil {
		// Retried with backoff: the squatter may rename its object.
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.auditInterval}, nil
}

// reconcileNamespaces is the namespaces phase: the namespaces the policy
// applies in, and how many of them are enforced (not terminating).
func (r *policyReconciler) reconcileNamespaces(ctx context.Context, s *policyScope) error {
	var err error
	if s.inScope, err = policyNamespaces(ctx, r.reader, s.policy, s.compiled); err != nil {
		return err
	}
	for _, ns := range s.inScope {
		if !ns.terminating {
			s.namespaces++
		}
	}
	return nil
}

// reconcileNetworkPolicies is the NetworkPolicies phase: it keeps the
// managed NetworkPolicy of every enforced namespace (Managed and Admin
// modes), or removes it (Disabled). A failure in one namespace (a
// NetworkPolicy of the managed name that someone else owns, an API error)
// is recorded for that namespace and the others carry on: one squatted
// name must not leave every namespace after it unenforced.
func (r *policyReconciler) reconcileNetworkPolicies(ctx context.Context, s *policyScope) error {
	obj := s.policy
	npName := managedNetworkPolicyName(s.clusterScoped, obj.GetName())
	changes := networkPolicyChanges{}
	defer func() { changes.announce(r.recorder, obj, npName, s.protected) }()
	for _, ns := range s.inScope {
		if ns.terminating {
			continue
		}
		key := types.NamespacedName{Namespace: ns.name, Name: npName}
		name := key.Name
		if s.clusterScoped {
			name = key.String()
		}
		if !s.gathers(ns.name) {
			// Kept by the reconcile that last gathered it; a change of it
			// since is repaired by its closure (closureOfOwner).
			if s.mode != v1alpha1.NetworkPolicyDisabled {
				s.networkPolicies = append(s.networkPolicies, name)
			}
			continue
		}
		if s.mode == v1alpha1.NetworkPolicyDisabled {
			if removed, err := removeNetworkPolicy(ctx, r.client, obj, key); err != nil {
				s.fail(ns.name, err)
			} else if removed {
				changes.add(npRemoved, ns.name)
			}
			continue
		}
		change, err := r.keepNetworkPolicy(ctx, obj, s.compiled, key, ns.labels, s.clusterScoped)
		if err != nil {
			s.fail(ns.name, err) // and audit it all the same
			continue
		}
		changes.add(change, ns.name)
		s.networkPolicies = append(s.networkPolicies, name)
	}
	return nil
}

// keepNetworkPolicy creates or updates obj's managed NetworkPolicy key in
// one namespace, whose labels are nsLabels, to what p requires there. It
// returns the reason of the Event its change deserves (networkPolicyChanges),
// "" when there was none.
func (r *policyReconciler) keepNetworkPolicy(ctx context.Context, obj policyObject, p *rules.Policy, key types.NamespacedName, nsLabels labels.Set, clusterScoped bool) (string, error) {
	var res controllerutil.OperationResult
	var drifted bool
	var written string
	// A conflict is another write of the same object since the cache's
	// version (a closure request's, or anyone's edit): read it again once
	// the cache shows it, four tries over about 0.3 s (retry.DefaultBackoff:
	// 10, 50, 250 ms apart); after that the namespace
	// fails, as any write that does not hold.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var err error
		res, drifted, written, err = ensureNetworkPolicy(ctx, r.client, r.scheme, obj, key, policyLabelValue(clusterScoped, obj.GetName()), r.specs.last(p.Ref, key.Namespace), func() (networkingv1.NetworkPolicySpec, error) {
			spec, err := r.desiredNetworkPolicy(ctx, p, obj.PolicySpec().PodSelector, key.Namespace, nsLabels)
			if err != nil {
				return spec, fmt.Errorf("failed to gather the policies of namespace %s: %w", key.Namespace, err)
			}
			return spec, nil
		})
		return err
	})
	if err != nil {
		return "", err
	}
	r.specs.put(p.Ref, key.Namespace, written)
	switch {
	case res == controllerutil.OperationResultCreated:
		return npCreated, nil
	case res == controllerutil.OperationResultUpdated && drifted:
		return npRepaired, nil
	case res == controllerutil.OperationResultUpdated:
		return npUpdated, nil
	}
	return "", nil
}

// violator is the object a violation is about, as its Event's related
// object (events.k8s.io/v1 related: the object is named by reference, not
// only in the note); nil for a kind the rules do not judge.
func violator(v v1alpha1.Violation) runtime.Object {
	k, ok := kinds.ByName(v.Kind)
	if !ok {
		return nil
	}
	o := k.New()
	o.SetNamespace(v.Namespace)
	o.SetName(v.Name)
	return o
}

// reconcileObserve is the observe phase: it audits every enforced
// namespace with the rules the webhook uses (a failure is that
// namespace's; the others carry on) and finds the node-mates of the
// selected pods.
func (r *policyReconciler) reconcileObserve(ctx context.Context, s *policyScope) error {
	observed := map[string]bool{}
	for _, ns := range s.inScope {
		if ns.terminating {
			continue
		}
		if !s.gathers(ns.name) {
			if obs, ok := r.memo.cached(s.compiled, ns.name); ok {
				observed[ns.name] = true
				s.add(obs)
				continue
			}
		}
		obs, audited, err := r.memo.observe(ctx, r.reader, s.compiled, ns.name, ns.labels)
		if err != nil {
			s.fail(ns.name, fmt.Errorf("failed to audit namespace %s: %w", ns.name, err))
			continue
		}
		observed[ns.name] = true
		result := "unchanged"
		if audited {
			result = "audited"
		}
		metrics.NamespaceAudits.WithLabelValues(s.kind(), result).Inc()
		s.add(obs)
	}
	r.memo.retain(s.compiled.Ref, observed)
	if err := r.observeNodeMates(ctx, s.compiled.Ref, &s.outcome, s.gather == nil); err != nil {
		return err
	}
	r.observeRuntime(ctx, s)
	return nil
}

// observeRuntime reads the runtime view of the selected pods (the agents'
// findings, runtimeOf) when every namespace was observed, so that a new
// policy's first status write holds it with Compliant summarizing it; the
// runtime controller only checks it then, and writes it on its own when a
// report changes between two reconciles of the policy.
func (r *policyReconciler) observeRuntime(ctx context.Context, s *policyScope) {
	if len(s.failures) > 0 {
		return // a namespace's pods are missing: the runtime controller's view is the whole one
	}
	rt, err := runtimeOf(ctx, r.reader, r.now(), s.compiled, s.policy.PolicySpec().Ports, s.matched)
	if err != nil {
		s.log.V(1).Info("the runtime view was not read; the runtime controller writes it", "error", err.Error())
		return
	}
	s.runtime, s.runtimeObserved = rt, true
}

// announce emits Events for what changed: new violations (bounded), and
// NetworkPolicy conflicts when they appear.
func (r *policyReconciler) announce(s *policyScope, cur *v1alpha1.LoopbackServiceStatus) {
	obj, old, o := s.policy, s.before.PolicyStatus(), &s.outcome
	if o.compileErr != nil {
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, "InvalidPolicy", "Compile", "the policy is not enforced: %v", o.compileErr)
		return
	}
	for i, v := range newViolations(old.Violations, cur.Violations) {
		if i == maxEventsPerReconcile {
			break
		}
		r.recorder.Eventf(obj, violator(v), corev1.EventTypeWarning, "Violation", "Audit", "%s", v.Message)
	}
	if o.runtimeObserved {
		announceRuntime(r.recorder, obj, old.Runtime, cur.Runtime)
	}
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
