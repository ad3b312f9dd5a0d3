package rules

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Requester is who asks for a way into a pod.
type Requester struct {
	Username string
	Groups   []string
}

// Access is a way into a pod through the API server: every one of them
// reaches the pod's loopback, or a protected port on its pod IP, past every
// NetworkPolicy.
type Access string

// The ways into a pod, as Events, logs and metrics name them.
const (
	// AccessPortForward is pods/portforward (kubectl port-forward).
	AccessPortForward Access = "port-forward"
	// AccessExec is pods/exec (kubectl exec).
	AccessExec Access = "exec"
	// AccessAttach is pods/attach (kubectl attach, kubectl run -i).
	AccessAttach Access = "attach"
	// AccessDebug is pods/ephemeralcontainers (kubectl debug).
	AccessDebug Access = "debug"
	// AccessProxy is pods/proxy and services/proxy to a protected port.
	AccessProxy Access = "proxy"
)

// AccessRule is what a policy does with one way into the pods it selects.
type AccessRule struct {
	Action  v1alpha1.AccessAction
	Allowed []v1alpha1.Subject
}

// compileAccess defaults an AccessSpec: Audit, so that a policy written
// before spec.exec and spec.debug existed breaks nobody's workflow.
func compileAccess(spec *v1alpha1.AccessSpec) AccessRule {
	r := AccessRule{Action: v1alpha1.AccessAudit}
	if spec != nil {
		if spec.Action != "" {
			r.Action = spec.Action
		}
		r.Allowed = spec.Allowed
	}
	return r
}

// rule is the policy's rule for an access: port-forward and the proxy
// answer to spec.portForward (both tunnel a user's connection through the
// API server), exec and attach to spec.exec, debug to spec.debug.
func (p *Policy) rule(a Access) AccessRule {
	switch a {
	case AccessExec, AccessAttach:
		return p.Exec
	case AccessDebug:
		return p.Debug
	default:
		return AccessRule{Action: v1alpha1.AccessAction(p.PortForward), Allowed: p.PortForwardAllowed}
	}
}

// AccessDecision is the verdict on one way into one pod.
type AccessDecision struct {
	Access Access
	// Action is Deny when a policy involved denies this requester, Audit
	// when one audits (or allows only because the requester is on its
	// allowed list), Allow otherwise; empty when no policy is involved.
	Action v1alpha1.AccessAction
	// Policies are the policies involved: those that select the pod, or
	// for a proxy those that protect the port it reaches; Denying those
	// that refuse this requester.
	Policies, Denying []PolicyRef

	// Pod, Port and Service say where a proxy goes: the pod (the first by
	// name, for a Service), the port on it as the request or the Service
	// resolves it (a number, or a name the API server resolves itself), and
	// the Service a services/proxy goes through.
	Pod, Port, Service string
}

// EvaluateAccess decides an access by requester to a pod with these labels
// in env's namespace. The decision is per pod, whatever ports the access
// later uses: port-forward names its ports in stream headers, and exec,
// attach and an ephemeral container run inside the pod's network namespace.
func EvaluateAccess(env *Env, podLabels map[string]string, who Requester, access Access) AccessDecision {
	d := AccessDecision{Access: access}
	for _, p := range env.MatchingPolicies(labels.Set(podLabels)) {
		d.add(p, who)
	}
	d.finish()
	return d
}

// add involves policy p once.
func (d *AccessDecision) add(p *Policy, who Requester) {
	for _, r := range d.Policies {
		if r == p.Ref {
			return
		}
	}
	d.Policies = append(d.Policies, p.Ref)
	rule := p.rule(d.Access)
	action := rule.Action
	if action == v1alpha1.AccessDeny && allowed(rule.Allowed, who) {
		action = v1alpha1.AccessAudit // break-glass: let through, but record
	}
	if action == v1alpha1.AccessDeny {
		d.Denying = append(d.Denying, p.Ref)
	}
	d.Action = stricterAccess(d.Action, action)
}

func (d *AccessDecision) finish() {
	sortRefs(d.Policies)
	sortRefs(d.Denying)
}

// Message explains a denial to the kubectl user; pod is the pod the
// request names (a proxy through a Service names its own).
func (d AccessDecision) Message(namespace, pod string) string {
	refs := make([]string, len(d.Denying))
	for i, r := range d.Denying {
		refs[i] = r.String()
	}
	by := strings.Join(refs, " and ")
	switch d.Access {
	case AccessExec:
		return fmt.Sprintf("exec into pod %s/%s is refused: %s declares ports of this pod loopback-only, and a process started in the pod reaches its loopback; ask for your user or group to be added to spec.exec.allowed", namespace, pod, by)
	case AccessAttach:
		return fmt.Sprintf("attach to pod %s/%s is refused: %s declares ports of this pod loopback-only, and attach drives a process in the pod, which reaches its loopback; ask for your user or group to be added to spec.exec.allowed", namespace, pod, by)
	case AccessDebug:
		return fmt.Sprintf("an ephemeral container (kubectl debug) in pod %s/%s is refused: %s declares ports of this pod loopback-only, and an ephemeral container shares the pod's network namespace, and so its loopback; ask for your user or group to be added to spec.debug.allowed", namespace, pod, by)
	case AccessProxy:
		via := ""
		if d.Service != "" {
			via = fmt.Sprintf(" through service %s/%s", namespace, d.Service)
		}
		return fmt.Sprintf("proxy%s to port %s of pod %s/%s is refused: %s declares this port loopback-only, and the API server's proxy reaches it on the pod IP past every NetworkPolicy; use a port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed",
			via, d.Port, namespace, d.Pod, by)
	default:
		return fmt.Sprintf("port-forward to pod %s/%s is refused: %s declares ports of this pod loopback-only, and a port-forward reaches the pod's loopback whatever ports it names; use a Service port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed",
			namespace, pod, by)
	}
}

// Note is the Event note (and log message) recording the access: who,
// which verb, which pod, and the decision (deny, audit, allow).
func (d AccessDecision) Note(user, namespace, pod string) string {
	decision := strings.ToLower(string(d.Action))
	if d.Access != AccessProxy {
		return fmt.Sprintf("%s by %q to pod %s/%s: %s", d.Access, user, namespace, pod, decision)
	}
	via := ""
	if d.Service != "" {
		via = fmt.Sprintf(" through service %s/%s", namespace, d.Service)
	}
	return fmt.Sprintf("proxy by %q to pod %s/%s port %s%s: %s", user, namespace, d.Pod, d.Port, via, decision)
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

func stricterAccess(a, b v1alpha1.AccessAction) v1alpha1.AccessAction {
	rank := map[v1alpha1.AccessAction]int{"": 0, v1alpha1.AccessAllow: 1, v1alpha1.AccessAudit: 2, v1alpha1.AccessDeny: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
