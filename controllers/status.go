package controllers

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// outcome is everything the phases of one reconcile learned, from which
// status is computed. A policy that does not compile has compileErr set
// and nothing else; reconcileErr is the error of the phase that stopped
// the reconcile.
type outcome struct {
	compileErr      error
	reconcileErr    error
	mode            v1alpha1.NetworkPolicyMode
	networkPolicies []string
	matchedPods     int32
	findings        []rules.Finding
	conflicts       []netpol.Conflict
	hostNetworkPods []v1alpha1.HostNetworkPod
	// adminNetworkPolicy is the AdminNetworkPolicy kept in Admin mode;
	// adminErr says why there is none.
	adminNetworkPolicy string
	adminErr           error
	protected          string // the protected ports, for messages
	// namespaces counts the namespaces enforced (not terminating);
	// failures are those where something failed: the others carried on.
	namespaces int
	failures   []namespaceFailure
	// matched are the selected pods of every namespace; nodeMates the pods
	// that can enter their network namespaces on their node.
	matched   []*podview.Pod
	nodeMates []v1alpha1.NodeMate
	// runtime is the runtime view of the matched pods (nil: no report),
	// when runtimeObserved.
	runtime         *v1alpha1.RuntimeStatus
	runtimeObserved bool
}

func (o *outcome) add(obs *observation) {
	o.matchedPods += obs.matchedPods
	o.findings = append(o.findings, obs.findings...)
	o.conflicts = append(o.conflicts, obs.conflicts...)
	o.hostNetworkPods = append(o.hostNetworkPods, obs.hostNetworkPods...)
	o.matched = append(o.matched, obs.matched...)
}

// computeStatus returns the status for the outcome: the observed fields,
// then each condition this reconciler owns, by its own setter (one file
// each, conditions_*.go). Every owned condition is always set; conditions
// keep their lastTransitionTime unless their status flips, so an unchanged
// outcome yields an equal status and no write. status.runtime and the
// RuntimeVerified condition are the runtime controller's (the same
// computation, runtimeOf and setRuntimeVerifiedCondition): written here
// too when observed, so a policy's first status holds them, else kept as
// read.
func computeStatus(old v1alpha1.LoopbackServiceStatus, generation int64, o *outcome) v1alpha1.LoopbackServiceStatus {
	st := *old.DeepCopy()
	switch {
	case o.compileErr != nil:
		st.ObservedGeneration = generation
		setRuntimeVerifiedCondition(&st, generation, o.compileErr, nil)
	case o.reconcileErr != nil:
		// Keep the last good observation.
	default:
		st.ObservedGeneration = generation
		setObservation(&st, o)
		if o.runtimeObserved {
			st.Runtime = o.runtime
			setRuntimeVerifiedCondition(&st, generation, nil, o.runtime)
		}
	}
	setReadyCondition(&st, generation, o)
	setNetworkPolicyEffectiveCondition(&st, generation, o)
	setCompliantCondition(&st, generation, o)
	return st
}

// setObservation writes the observed fields of a reconcile that ran every
// phase: the protected ports, the selected pods, the violations, the
// hostNetwork pods, the managed NetworkPolicies and the node-mates.
func setObservation(st *v1alpha1.LoopbackServiceStatus, o *outcome) {
	st.ProtectedPorts = o.protected
	st.MatchedPods = ptr.To(o.matchedPods)
	all := violations(o.findings)
	st.ViolationCount = ptr.To(int32(len(all)))
	st.Violations = nil
	if len(all) > 0 {
		st.Violations = all[:min(len(all), v1alpha1.MaxStatusViolations)]
	}
	// Cache lists come in no fixed order: sort whatever status shows, or
	// every reconcile would write a reordered status.
	sort.Slice(o.hostNetworkPods, func(i, j int) bool {
		a, b := o.hostNetworkPods[i], o.hostNetworkPods[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	sort.Strings(o.networkPolicies)
	sort.Slice(o.conflicts, func(i, j int) bool { return o.conflicts[i].String() < o.conflicts[j].String() })
	st.HostNetworkPods = nil
	if len(o.hostNetworkPods) > 0 {
		st.HostNetworkPods = o.hostNetworkPods[:min(len(o.hostNetworkPods), v1alpha1.MaxStatusViolations)]
	}
	st.NetworkPolicies = o.networkPolicies
	setNodeMates(st, o.nodeMates)
}

// setCondition sets one condition of st for the given generation.
func setCondition(st *v1alpha1.LoopbackServiceStatus, generation int64, t string, s metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation,
	})
}

// keepOrUnknown leaves a condition as the last good observation set it
// (the reconcile failed before observing anything new), or sets it
// Unknown when there is none yet.
func keepOrUnknown(st *v1alpha1.LoopbackServiceStatus, generation int64, t string, err error) {
	if meta.FindStatusCondition(st.Conditions, t) != nil {
		return
	}
	setCondition(st, generation, t, metav1.ConditionUnknown, v1alpha1.ReasonReconcileError, "not observed yet: "+err.Error())
}

func describeConflicts(cs []netpol.Conflict) string {
	parts := make([]string, 0, len(cs))
	seen := map[string]bool{}
	for _, c := range cs {
		s := "NetworkPolicy " + c.String()
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// newViolations returns the violations of cur that old did not list, for
// Events: a violation is announced once, not on every resync. One is new
// when anything but its message differs: a Service whose targetPort moves
// to another protected port keeps its field path.
func newViolations(old, cur []v1alpha1.Violation) []v1alpha1.Violation {
	key := func(v v1alpha1.Violation) v1alpha1.Violation {
		v.Message = ""
		return v
	}
	seen := map[v1alpha1.Violation]bool{}
	for _, v := range old {
		seen[key(v)] = true
	}
	var out []v1alpha1.Violation
	for _, v := range cur {
		if !seen[key(v)] {
			out = append(out, v)
		}
	}
	return out
}

func portsString(p *rules.Policy) string {
	s := make([]string, len(p.Ports))
	for i, r := range p.Ports {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}
