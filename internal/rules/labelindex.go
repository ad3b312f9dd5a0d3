package rules

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/podview"
)

// labelIndex is a snapshot's lookup structure for Service selection: the
// live pods and the workload templates by label, and the Services in scope
// by one pair of their selector. Audit asks it for the candidates of each
// object (a superset of what selects or is selected: the rules still match
// every candidate), so that a namespace of S Services and W workloads
// costs about S+W lookups instead of S×W selector matches. Candidates keep
// the snapshot's order, so findings come out as without the index.
type labelIndex struct {
	pods      []*podview.Pod
	templates []PodTemplate // of the workloads, in order; Object.Kind "" when none
	workloads []runtime.Object
	services  []*corev1.Service
	// podsBy and templatesBy list, for each label pair, the indices of the
	// pods and templates that carry it; servicesBy, the Services indexed
	// under that pair of their selector (one pair each).
	podsBy, templatesBy, servicesBy map[labelPair][]int
}

type labelPair struct{ key, value string }

func newLabelIndex(pods []*podview.Pod, workloads []runtime.Object, services []*corev1.Service) *labelIndex {
	s := &labelIndex{pods: pods, workloads: workloads, services: services,
		podsBy: map[labelPair][]int{}, templatesBy: map[labelPair][]int{}, servicesBy: map[labelPair][]int{}}
	for i, p := range pods {
		for k, v := range p.Labels {
			s.podsBy[labelPair{k, v}] = append(s.podsBy[labelPair{k, v}], i)
		}
	}
	s.templates = make([]PodTemplate, len(workloads))
	for i, w := range workloads {
		t, ok := PodTemplateOf(w)
		if !ok {
			continue
		}
		s.templates[i] = t
		for k, v := range t.Labels {
			s.templatesBy[labelPair{k, v}] = append(s.templatesBy[labelPair{k, v}], i)
		}
	}
	for i, svc := range services {
		if !inScope(svc) {
			continue
		}
		// Under its rarest pair among the pods and templates: a pod
		// looks the Service up through each of its own labels.
		var best labelPair
		n := -1
		for k, v := range svc.Spec.Selector {
			lp := labelPair{k, v}
			if c := len(s.podsBy[lp]) + len(s.templatesBy[lp]); n < 0 || c < n || (c == n && (lp.key < best.key || lp.key == best.key && lp.value < best.value)) {
				best, n = lp, c
			}
		}
		s.servicesBy[best] = append(s.servicesBy[best], i)
	}
	return s
}

// selectedBy returns the live pods and workloads that svc may select: those
// carrying the rarest pair of its selector, in snapshot order.
func (s *labelIndex) selectedBy(svc *corev1.Service) ([]*podview.Pod, []runtime.Object) {
	if !inScope(svc) {
		return nil, nil
	}
	var best labelPair
	n := -1
	for k, v := range svc.Spec.Selector {
		lp := labelPair{k, v}
		if c := len(s.podsBy[lp]) + len(s.templatesBy[lp]); n < 0 || c < n {
			best, n = lp, c
		}
	}
	pods := make([]*podview.Pod, 0, len(s.podsBy[best]))
	for _, i := range s.podsBy[best] {
		pods = append(pods, s.pods[i])
	}
	workloads := make([]runtime.Object, 0, len(s.templatesBy[best]))
	for _, i := range s.templatesBy[best] {
		workloads = append(workloads, s.workloads[i])
	}
	return pods, workloads
}

// selecting returns the Services in scope that may select a pod (template)
// with these labels, in snapshot order.
func (s *labelIndex) selecting(podLabels map[string]string) []*corev1.Service {
	var idx []int
	for k, v := range podLabels {
		idx = append(idx, s.servicesBy[labelPair{k, v}]...)
	}
	slices.Sort(idx)
	out := make([]*corev1.Service, len(idx))
	for j, i := range idx {
		out[j] = s.services[i]
	}
	return out
}

// selectorMatches is labels.SelectorFromValidatedSet(selector).Matches(l)
// without building the selector: every pair of selector is in l.
func selectorMatches(selector, l map[string]string) bool {
	for k, v := range selector {
		if lv, ok := l[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
