package rules

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Env is what a review knows about the namespace of the object: its labels
// (for cluster policies) and the policy sets that may apply there, usually
// the namespace's own LoopbackServices and all ClusterLoopbackServices.
type Env struct {
	Namespace       string
	NamespaceLabels labels.Labels
	Sets            []*Set
}

// covering calls fn for every policy of the env that applies in the
// namespace and protects port/protocol.
func (e *Env) covering(protocol corev1.Protocol, port int32, fn func(*Policy, PortRange)) {
	for _, s := range e.Sets {
		for _, p := range s.Covering(protocol, port) {
			if !p.AppliesToNamespace(e.Namespace, e.NamespaceLabels) {
				continue
			}
			if r, ok := p.Protects(protocol, port); ok {
				fn(p, r)
			}
		}
	}
}

// each calls fn for every policy of the env that applies in the namespace.
func (e *Env) each(fn func(*Policy)) {
	for _, s := range e.Sets {
		for _, p := range s.Policies() {
			if p.AppliesToNamespace(e.Namespace, e.NamespaceLabels) {
				fn(p)
			}
		}
	}
}

// Policies returns the policies of the env that apply in its namespace.
func (e *Env) Policies() []*Policy {
	var out []*Policy
	e.each(func(p *Policy) { out = append(out, p) })
	return out
}

// Empty reports whether no policy can apply: callers skip decoding and
// lookups entirely.
func (e *Env) Empty() bool {
	for _, s := range e.Sets {
		if s.Len() > 0 {
			return false
		}
	}
	return true
}

// MatchingPolicies returns the policies of the env that protect pods with
// these labels.
func (e *Env) MatchingPolicies(podLabels labels.Labels) []*Policy {
	var out []*Policy
	e.selecting(podLabels, func(p *Policy) { out = append(out, p) })
	return out
}

// selecting calls fn for every policy of the env that applies in the
// namespace and selects pods with these labels.
func (e *Env) selecting(podLabels labels.Labels, fn func(*Policy)) {
	set, ok := podLabels.(labels.Set)
	if !ok {
		e.each(func(p *Policy) {
			if p.Selector.Matches(podLabels) {
				fn(p)
			}
		})
		return
	}
	for _, s := range e.Sets {
		s.Selecting(set, func(p *Policy) {
			if p.AppliesToNamespace(e.Namespace, e.NamespaceLabels) {
				fn(p)
			}
		})
	}
}

// naming calls fn for every policy of the env that applies in the namespace
// and names a port name with this protocol.
func (e *Env) naming(name string, protocol corev1.Protocol, fn func(*Policy, PortRange)) {
	for _, s := range e.Sets {
		for _, p := range s.Naming(name) {
			if !p.AppliesToNamespace(e.Namespace, e.NamespaceLabels) {
				continue
			}
			if r, ok := p.protectsName(name, protocol); ok {
				fn(p, r)
			}
		}
	}
}
