package rules

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Requester is who asks for a port-forward.
type Requester struct {
	Username string
	Groups   []string
}

// PortForwardDecision is the verdict on a port-forward to one pod. The
// forwarded ports are not known at admission time (kubectl names them in
// stream headers, and a ?ports= query can be faked), so the decision is per
// pod: a port-forward reaches the pod's loopback whatever ports it names.
type PortForwardDecision struct {
	// Action is Deny when a selecting policy denies this requester, Audit
	// when one audits (or allows only because the requester is on its
	// allowed list), Allow otherwise; empty when no policy selects the pod.
	Action v1alpha1.PortForwardAction
	// Policies are the policies that select the pod; Denying those that
	// refuse this requester.
	Policies, Denying []PolicyRef
}

// EvaluatePortForward decides a port-forward by requester to a pod with
// these labels in env's namespace.
func EvaluatePortForward(env *Env, podLabels map[string]string, who Requester) PortForwardDecision {
	var d PortForwardDecision
	for _, p := range env.MatchingPolicies(labels.Set(podLabels)) {
		d.Policies = append(d.Policies, p.Ref)
		action := p.PortForward
		if action == v1alpha1.PortForwardDeny && allowed(p.PortForwardAllowed, who) {
			action = v1alpha1.PortForwardAudit // break-glass: let through, but record
		}
		if action == v1alpha1.PortForwardDeny {
			d.Denying = append(d.Denying, p.Ref)
		}
		d.Action = stricterForward(d.Action, action)
	}
	sortRefs(d.Policies)
	sortRefs(d.Denying)
	return d
}

// Message explains a denial to the kubectl user.
func (d PortForwardDecision) Message(namespace, pod string) string {
	refs := make([]string, len(d.Denying))
	for i, r := range d.Denying {
		refs[i] = r.String()
	}
	return fmt.Sprintf("port-forward to pod %s/%s is refused: %s declares ports of this pod loopback-only, and a port-forward reaches the pod's loopback whatever ports it names; use a Service port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed",
		namespace, pod, strings.Join(refs, " and "))
}

func allowed(subjects []v1alpha1.Subject, who Requester) bool {
	for _, s := range subjects {
		switch s.Kind {
		case v1alpha1.SubjectUser:
			if s.Name == who.Username {
				return true
			}
		case v1alpha1.SubjectServiceAccount:
			if "system:serviceaccount:"+s.Namespace+":"+s.Name == who.Username {
				return true
			}
		case v1alpha1.SubjectGroup:
			for _, g := range who.Groups {
				if g == s.Name {
					return true
				}
			}
		}
	}
	return false
}

func stricterForward(a, b v1alpha1.PortForwardAction) v1alpha1.PortForwardAction {
	rank := map[v1alpha1.PortForwardAction]int{"": 0, v1alpha1.PortForwardAllow: 1, v1alpha1.PortForwardAudit: 2, v1alpha1.PortForwardDeny: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
