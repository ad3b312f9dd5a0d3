package rules

import (
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Set is an immutable collection of policies with a port index: Covering
// answers "which policies protect port p/proto" in O(log n) whatever the
// number of policies, so a review costs the same with 10 or 10,000.
type Set struct {
	policies []*Policy
	// segments per protocol: disjoint, sorted ranges, each listing the
	// policies whose ports cover the whole segment.
	segments map[corev1.Protocol][]segment
	// byName lists, per port name, the policies that name a port so.
	byName map[string][]*Policy
	// bySelector indexes the policies (by position) under one equality
	// requirement of their pod selector: (key, value) -> positions.
	// unkeyed lists the policies whose selector has no equality
	// requirement ({}, or only Exists, NotIn, DoesNotExist).
	bySelector map[selectorKey][]int32
	unkeyed    []int32
}

type segment struct {
	from, to int32
	policies []*Policy
}

// NewSet indexes the policies. The slice is kept; do not modify it after.
func NewSet(policies []*Policy) *Set {
	s := &Set{policies: policies, segments: map[corev1.Protocol][]segment{}, bySelector: make(map[selectorKey][]int32, len(policies))}
	cuts := map[corev1.Protocol][]int32{}
	for i, p := range policies {
		s.indexSelector(i, p)
		for _, r := range p.Ports {
			// Segment boundaries: every range start and every end+1.
			cuts[r.Protocol] = append(cuts[r.Protocol], r.From, r.To+1)
			if r.Name != "" {
				if s.byName == nil {
					s.byName = map[string][]*Policy{}
				}
				if l := s.byName[r.Name]; len(l) == 0 || l[len(l)-1] != p {
					s.byName[r.Name] = append(l, p)
				}
			}
		}
	}
	for proto, cs := range cuts {
		sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
		cs = dedupe(cs)
		segs := make([]segment, 0, len(cs)-1)
		for i := 0; i+1 < len(cs); i++ {
			segs = append(segs, segment{from: cs[i], to: cs[i+1] - 1})
		}
		for _, p := range policies {
			for _, r := range p.Ports {
				if r.Protocol != proto {
					continue
				}
				i := sort.Search(len(segs), func(i int) bool { return segs[i].from >= r.From })
				for ; i < len(segs) && segs[i].to <= r.To; i++ {
					if n := len(segs[i].policies); n == 0 || segs[i].policies[n-1] != p {
						segs[i].policies = append(segs[i].policies, p)
					}
				}
			}
		}
		// Drop gaps no range covers.
		kept := segs[:0]
		for _, sg := range segs {
			if len(sg.policies) > 0 {
				kept = append(kept, sg)
			}
		}
		s.segments[proto] = kept
	}
	return s
}

// indexSelector files policy i under the first equality requirement (=,
// ==, in) of its pod selector: a pod can match the selector only if it
// carries that key with one of those values.
func (s *Set) indexSelector(i int, p *Policy) {
	if p.Selector != nil {
		reqs, _ := p.Selector.Requirements()
		for _, r := range reqs {
			switch r.Operator() {
			case selection.Equals, selection.DoubleEquals, selection.In:
				for _, v := range r.ValuesUnsorted() {
					k := selectorKey{r.Key(), v}
					s.bySelector[k] = append(s.bySelector[k], int32(i))
				}
				return
			}
		}
	}
	s.unkeyed = append(s.unkeyed, int32(i))
}

type selectorKey struct{ key, value string }

// Selecting calls fn, in the order of the set, for every policy whose pod
// selector matches podLabels. It looks only at the policies filed under
// one of the pod's labels and those with no equality requirement, so its
// cost does not grow with the policies that select other pods.
func (s *Set) Selecting(podLabels labels.Set, fn func(*Policy)) {
	if s == nil {
		return
	}
	var buf [16]int32
	cand := append(buf[:0], s.unkeyed...)
	for k, v := range podLabels {
		cand = append(cand, s.bySelector[selectorKey{k, v}]...)
	}
	slices.Sort(cand)
	for j, i := range cand {
		if j > 0 && i == cand[j-1] {
			continue
		}
		if p := s.policies[i]; p.Selector.Matches(podLabels) {
			fn(p)
		}
	}
}

func dedupe(s []int32) []int32 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Policies returns every policy of the set.
func (s *Set) Policies() []*Policy {
	if s == nil {
		return nil
	}
	return s.policies
}

// Len is the number of policies.
func (s *Set) Len() int { return len(s.Policies()) }

// Covering returns the policies that protect port/protocol.
func (s *Set) Covering(protocol corev1.Protocol, port int32) []*Policy {
	if s == nil {
		return nil
	}
	segs := s.segments[protocol]
	i := sort.Search(len(segs), func(i int) bool { return segs[i].to >= port })
	if i < len(segs) && segs[i].from <= port {
		return segs[i].policies
	}
	return nil
}

// Naming returns the policies that give a port this name.
func (s *Set) Naming(name string) []*Policy {
	if s == nil {
		return nil
	}
	return s.byName[name]
}
