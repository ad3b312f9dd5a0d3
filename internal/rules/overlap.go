package rules

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
)

// MayOverlap reports whether some set of labels can match both selectors,
// decided from the selectors alone, so the answer holds for every pod that
// exists now or is created later. It is false only when the selectors are
// provably disjoint: for some key, their requirements together cannot be
// met (the In/Equals value sets do not intersect, Exists meets
// DoesNotExist, or NotIn/NotEquals exclude every value In/Equals allows).
// Gt and Lt count as Exists, which can only answer "may overlap" more
// often. A nil selector selects nothing and overlaps nothing.
func MayOverlap(a, b labels.Selector) bool {
	if a == nil || b == nil {
		return false
	}
	ra, okA := a.Requirements()
	rb, okB := b.Requirements()
	if !okA || !okB {
		return false // labels.Nothing()
	}
	keys := map[string]*keyConstraint{}
	for _, r := range append(append([]labels.Requirement{}, ra...), rb...) {
		k := keys[r.Key()]
		if k == nil {
			k = &keyConstraint{}
			keys[r.Key()] = k
		}
		k.add(r)
	}
	for _, k := range keys {
		if !k.satisfiable() {
			return false
		}
	}
	return true
}

// keyConstraint is the conjunction of requirements on one label key.
type keyConstraint struct {
	present, absent bool
	// allowed is the values the key may take, nil for any; forbidden the
	// values it may not.
	allowed   sets.Set[string]
	forbidden sets.Set[string]
}

func (k *keyConstraint) add(r labels.Requirement) {
	switch r.Operator() {
	case selection.Equals, selection.DoubleEquals, selection.In:
		k.present = true
		v := sets.New(r.Values().UnsortedList()...)
		if k.allowed == nil {
			k.allowed = v
		} else {
			k.allowed = k.allowed.Intersection(v)
		}
	case selection.NotEquals, selection.NotIn:
		if k.forbidden == nil {
			k.forbidden = sets.New[string]()
		}
		k.forbidden.Insert(r.Values().UnsortedList()...)
	case selection.Exists, selection.GreaterThan, selection.LessThan:
		k.present = true
	case selection.DoesNotExist:
		k.absent = true
	}
}

func (k *keyConstraint) satisfiable() bool {
	if k.present && k.absent {
		return false
	}
	if k.allowed == nil {
		return true // any value, or none: label values are unbounded
	}
	return k.allowed.Difference(k.forbidden).Len() > 0
}
