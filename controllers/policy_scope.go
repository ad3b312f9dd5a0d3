package controllers

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// policyScope is one reconcile of one policy: the policy as read (and the
// copy its status patch is computed from), what the compile and namespaces
// phases produced for the phases after them, and what the phases found,
// from which status is computed once, in the reconcile's deferred patch.
type policyScope struct {
	log    logr.Logger
	policy policyObject
	// before is the policy as read, the base of the status patch.
	before        policyObject
	clusterScoped bool
	// compiled is the policy as the rules judge it; nil when it does not
	// compile (outcome.compileErr says why) and the phases after compile
	// do not run.
	compiled *rules.Policy
	// inScope are the namespaces the policy applies in, terminating ones
	// included (their NetworkPolicy is kept until their pods are gone).
	inScope []namespaceInScope
	// gather says whether a namespace's NetworkPolicy is kept and its
	// inputs audited in this reconcile; the others' last audit stands
	// (dirty.go). Nil: every namespace.
	gather func(namespace string) bool
	outcome
}

// gathers says whether this reconcile reads namespace again.
func (s *policyScope) gathers(namespace string) bool {
	return s.gather == nil || s.gather(namespace)
}

func newPolicyScope(ctx context.Context, obj policyObject) *policyScope {
	s := &policyScope{
		log:    logr.FromContextOrDiscard(ctx),
		policy: obj, before: obj.DeepCopyObject().(policyObject),
		clusterScoped: obj.GetNamespace() == "",
	}
	s.mode = obj.PolicySpec().NetworkPolicy
	if s.mode == "" {
		s.mode = v1alpha1.NetworkPolicyManaged
	}
	return s
}

// kind is the policy's kind as the rules name it.
func (s *policyScope) kind() string {
	if s.clusterScoped {
		return rules.KindClusterLoopbackService
	}
	return rules.KindLoopbackService
}

// ref names the policy as the rules and the metrics do.
func (s *policyScope) ref() rules.PolicyRef {
	return rules.PolicyRef{Kind: s.kind(), Namespace: s.policy.GetNamespace(), Name: s.policy.GetName()}
}

// phase is one step of a policy reconcile. A phase returns an error only
// when the reconcile cannot go on; a failure in one namespace is recorded
// in the scope (outcome.fail) and the other namespaces carry on.
type phase struct {
	// what the phase does, for the error's context: "failed to <what>".
	what string
	run  func(context.Context, *policyScope) error
}

// runPhases runs phases in order until one fails or the policy turns out
// not to compile; the error says which phase failed.
func runPhases(ctx context.Context, s *policyScope, phases []phase) error {
	for _, ph := range phases {
		if err := ph.run(ctx, s); err != nil {
			return fmt.Errorf("failed to %s: %w", ph.what, err)
		}
		if s.compileErr != nil {
			return nil // status says why; nothing to enforce
		}
	}
	return nil
}

// compilePolicy compiles a policy of either kind.
func compilePolicy(obj policyObject) (*rules.Policy, error) {
	switch o := obj.(type) {
	case *v1alpha1.LoopbackService:
		return rules.Compile(o)
	case *v1alpha1.ClusterLoopbackService:
		return rules.CompileCluster(o)
	}
	return nil, fmt.Errorf("unknown policy type %T", obj)
}

// reconcileCompile is the compile phase: a policy that does not compile is
// not an error to retry but a status to show (Ready False, InvalidSelector).
func reconcileCompile(_ context.Context, s *policyScope) error {
	s.compiled, s.compileErr = compilePolicy(s.policy)
	if s.compileErr == nil {
		s.protected = portsString(s.compiled)
	}
	return nil
}

// policyNamespaces returns the namespaces a compiled policy applies in:
// its own for a LoopbackService (even when the cache does not hold it
// yet), the selected ones for a ClusterLoopbackService. Terminating ones
// are included and marked.
func policyNamespaces(ctx context.Context, reader client.Reader, obj policyObject, p *rules.Policy) ([]namespaceInScope, error) {
	if ns := obj.GetNamespace(); ns != "" {
		n := &corev1.Namespace{}
		if err := reader.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("failed to get namespace %s: %w", ns, err)
		}
		return []namespaceInScope{{name: ns, labels: labels.Set(n.Labels), terminating: !n.DeletionTimestamp.IsZero()}}, nil
	}
	var list corev1.NamespaceList
	// Read only: no deep copy of every namespace on each event.
	if err := reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("failed to list namespaces: %w", err)
	}
	var out []namespaceInScope
	for _, ns := range list.Items {
		l := labels.Set(ns.Labels)
		if p.AppliesToNamespace(ns.Name, l) {
			out = append(out, namespaceInScope{name: ns.Name, labels: l, terminating: ns.DeletionTimestamp != nil})
		}
	}
	return out, nil
}
