package rules

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
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
}

type segment struct {
	from, to int32
	policies []*Policy
}

// NewSet indexes the policies. The slice is kept; do not modify it after.
func NewSet(policies []*Policy) *Set {
	s := &Set{policies: policies, segments: map[corev1.Protocol][]segment{}}
	cuts := map[corev1.Protocol][]int32{}
	for _, p := range policies {
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
