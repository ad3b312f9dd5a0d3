package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Reason codes of the findings only an admission review makes.
const (
	// ReasonLeavesProtection: a label change would take a running pod out
	// of a policy that protects it.
	ReasonLeavesProtection = "LeavesProtection"
	// ReasonReviewIncomplete: the review stopped at its deadline or its
	// work limit before it could judge the whole object.
	ReasonReviewIncomplete = "ReviewIncomplete"
)

const (
	// maxReportedFindings bounds the messages of one answer per action: a
	// Service with 20,000 ports to a protected port is refused with 20
	// messages and "and 19980 more exposures", not 7 MiB.
	maxReportedFindings = 20
	// maxReviewWork bounds the work of one review, in units of one Service
	// port resolved against one pod or template, one container port, one
	// endpoint address and port: what the API server accepts (a Service
	// with tens of thousands of ports, pods with as many) stays a bounded
	// review. About 0.3 s of CPU; no object a person writes comes near it
	// (a Service of 10 ports selecting 10,000 pods is 110,000).
	maxReviewWork = 1_000_000
)

// Operation is the admission operation under review.
type Operation string

// The operations a review judges; any other is allowed.
const (
	OperationCreate Operation = "CREATE"
	OperationUpdate Operation = "UPDATE"
)

// ReviewRequest is one admission request, decoded.
type ReviewRequest struct {
	Operation Operation
	// Object is the object as it would be stored; OldObject the one it
	// replaces (UPDATE only).
	Object, OldObject runtime.Object
	// Requester is who asks: a policy's spec.portForward.allowed subjects
	// may still take a pod out of it (recorded as Audit).
	Requester Requester
	// Done, when it closes (the request's deadline), stops the review. An
	// unfinished review is never an allow: see ReasonReviewIncomplete.
	Done <-chan struct{}
}

// Review is the single admission entry point of the rules: what the
// request introduces, judged against the snapshot: its env (the object's
// namespace and the policies that may apply there) and what the caller
// read of the namespace for this object (a Service's selected pods and the
// namespace's workloads, the Services for a pod or template, a Resolver
// for endpoints). Unlike Audit, every pod of the snapshot counts, being
// deleted or not.
//
//   - CREATE: every finding of the object (Evaluate).
//   - UPDATE: only what the update introduces: a finding of the new object
//     counts unless the old one had a finding with the same reason, port,
//     protocol and related object, at least the same policies and an
//     action at least as strict, reaching at least the same pods. An
//     update whose exposure inputs (labels and spec, a slice's endpoints)
//     are unchanged introduces nothing, whether or not the object is being
//     deleted, so removing a finalizer always passes; any other update of
//     a terminating object is judged like the rest.
//   - UPDATE of a Pod: a label change that takes a pod not yet finished
//     out of a policy that selects it (relabelOut).
//
// The decision keeps at most maxReportedFindings findings per action and
// its Denial and Warnings say how many more there were. The work is
// bounded by maxReviewWork and req.Done; a review that stops early ends in
// a single ReviewIncomplete finding with the strictest action of env's
// policies, never in an allow by omission.
func Review(req ReviewRequest, snap Snapshot) Decision {
	env, cluster := snap.env(), snap.reviewCluster()
	// Endpoints are judged by the policies of the pods they reach, in any
	// namespace (cluster.Resolver), even where env, their own, is empty.
	if (env.Empty() && cluster.Resolver == nil) || req.Object == nil || (req.Operation != OperationCreate && req.Operation != OperationUpdate) {
		return Decision{}
	}
	update := req.Operation == OperationUpdate && req.OldObject != nil
	if update && exposureUnchanged(req.OldObject, req.Object) {
		return Decision{}
	}
	b := &budget{left: maxReviewWork, done: req.Done}
	findings := evaluate(env, req.Object, cluster, b)
	if update {
		// A Service that now reaches beyond where it did (ClusterIP to
		// NodePort or LoadBalancer, new externalIPs) exposes every port it
		// reaches anew: nothing it had is covered.
		if len(findings) > 0 && !b.stopped && !serviceWidened(req.OldObject, req.Object) {
			findings = introduced(findings, evaluate(env, req.OldObject, cluster, b))
		}
		findings = append(findings, relabelOut(env, req.OldObject, req.Object, req.Requester)...)
	}
	if b.stopped {
		findings = incomplete(env, req.Object)
	}
	return decide(findings)
}

// reviewCluster is what a review judges an object against: the snapshot's
// pods, Services and resolver, and its workloads not judged through their
// owner.
func (s *Snapshot) reviewCluster() Cluster {
	c := Cluster{Pods: s.Pods, Services: s.Services, Resolver: s.Resolver}
	if len(s.Workloads) > 0 {
		owners := NewOwners(s.Workloads)
		for _, w := range s.Workloads {
			if !OwnedByWorkload(w, owners) {
				c.Workloads = append(c.Workloads, w)
			}
		}
	}
	return c
}

// evaluate is Evaluate within a budget.
func evaluate(env *Env, obj runtime.Object, cluster Cluster, b *budget) []Finding {
	switch o := obj.(type) {
	case *corev1.Service:
		return evaluateService(env, o, cluster.Pods, cluster.Workloads, b)
	case *discoveryv1.EndpointSlice, *corev1.Endpoints:
		if !b.spend(endpointsWork(o) + len(cluster.Pods)) {
			return nil
		}
		return Evaluate(env, obj, cluster)
	}
	pod, ok := PodTemplateOf(obj)
	if !ok {
		return nil
	}
	findings := evaluatePod(env, pod, b)
	return append(findings, evaluatePodServices(env, pod, cluster.Services, b)...)
}

// endpointsWork is what judging an EndpointSlice or Endpoints costs:
// every address against every port of its group.
func endpointsWork(obj runtime.Object) int {
	n := 0
	switch o := obj.(type) {
	case *discoveryv1.EndpointSlice:
		for _, ep := range o.Endpoints {
			n += len(ep.Addresses) * max(1, len(o.Ports))
		}
	case *corev1.Endpoints:
		for _, s := range o.Subsets {
			n += (len(s.Addresses) + len(s.NotReadyAddresses)) * max(1, len(s.Ports))
		}
	}
	return n
}

// exposureUnchanged reports whether an update keeps everything the rules
// read of the object: then it introduces nothing.
func exposureUnchanged(old, cur runtime.Object) bool {
	switch o := cur.(type) {
	case *corev1.Service:
		p, ok := old.(*corev1.Service)
		return ok && equality.Semantic.DeepEqual(o.Spec, p.Spec)
	case *discoveryv1.EndpointSlice:
		p, ok := old.(*discoveryv1.EndpointSlice)
		return ok && o.AddressType == p.AddressType &&
			equality.Semantic.DeepEqual(o.Endpoints, p.Endpoints) && equality.Semantic.DeepEqual(o.Ports, p.Ports)
	case *corev1.Endpoints:
		p, ok := old.(*corev1.Endpoints)
		return ok && equality.Semantic.DeepEqual(o.Subsets, p.Subsets)
	}
	t, ok := PodTemplateOf(cur)
	ot, oldOK := PodTemplateOf(old)
	return ok && oldOK && t.Object.Kind == ot.Object.Kind &&
		equality.Semantic.DeepEqual(t.Labels, ot.Labels) && equality.Semantic.DeepEqual(t.Spec, ot.Spec)
}

// serviceWidened reports whether an update makes a Service reachable from
// further away: a wider type (ClusterIP < NodePort < LoadBalancer) or an
// external IP the old one did not have.
func serviceWidened(old, cur runtime.Object) bool {
	o, ok1 := old.(*corev1.Service)
	n, ok2 := cur.(*corev1.Service)
	if !ok1 || !ok2 {
		return false
	}
	reach := func(t corev1.ServiceType) int {
		switch t {
		case corev1.ServiceTypeNodePort:
			return 1
		case corev1.ServiceTypeLoadBalancer:
			return 2
		}
		return 0
	}
	if reach(n.Spec.Type) > reach(o.Spec.Type) {
		return true
	}
	for _, ip := range n.Spec.ExternalIPs {
		if !slices.Contains(o.Spec.ExternalIPs, ip) {
			return true
		}
	}
	return false
}

// introduced drops the findings of cur that a finding of old already
// covers: same object, reason, related object, port and protocol; its
// policies among the old one's; an action no stricter; and, for a
// Service, no pod or template the old one did not reach. The field is not
// compared: moving a port within the object exposes nothing new, while a
// Warn finding on 6060 never covers a Deny finding on 15000 in the same
// field.
func introduced(cur, old []Finding) []Finding {
	type key struct {
		object          ObjectRef
		reason, related string
		port            int32
		protocol        corev1.Protocol
	}
	keyOf := func(f *Finding) key { return key{f.Object, f.Reason, f.Related, f.Port, f.Protocol} }
	byKey := make(map[key][]*Finding, len(old))
	for i := range old {
		k := keyOf(&old[i])
		byKey[k] = append(byKey[k], &old[i])
	}
	out := cur[:0]
	for i := range cur {
		f := &cur[i]
		covered := false
		for _, g := range byKey[keyOf(f)] {
			if severity(f.Action) <= severity(g.Action) && refsWithin(f.Policies, g.Policies) && f.reach.within(g.reach) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, *f)
		}
	}
	return out
}

// refsWithin reports whether every policy of a is in b.
func refsWithin(a, b []PolicyRef) bool {
	for _, r := range a {
		found := false
		for _, s := range b {
			if r == s {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// relabelOut is hole 3 of issue #15: a label change that takes a pod out
// of a policy that selects it would also take it out of everything that
// covers selected pods (the port-forward guard, the managed NetworkPolicy,
// the node agent) while the pod keeps running with the sockets it opened
// under protection. Each policy that selects the old labels and not the
// new ones is a finding with the policy's action, unless the pod has
// finished (Succeeded, Failed); a requester among the policy's
// spec.portForward.allowed subjects is let through, recorded as Audit.
func relabelOut(env *Env, oldObj, newObj runtime.Object, who Requester) []Finding {
	oldPod, ok := oldObj.(*corev1.Pod)
	newPod, newOK := newObj.(*corev1.Pod)
	if !ok || !newOK || oldPod.Status.Phase == corev1.PodSucceeded || oldPod.Status.Phase == corev1.PodFailed {
		return nil
	}
	newLabels := labels.Set(newPod.Labels)
	obj := ObjectRef{Kind: "Pod", Namespace: newPod.Namespace, Name: objectName(newPod.Name, newPod.GenerateName)}
	const format = "is protected by \x00policies\x00, and the label change at metadata.labels would take it out of that protection while it runs (the port-forward guard, the NetworkPolicy and the node agent cover only the pods a policy selects); delete and recreate the pod with the new labels; a running pod keeps the sockets it opened under protection"
	var c collector
	env.selecting(labels.Set(oldPod.Labels), func(p *Policy) {
		if p.Selector.Matches(newLabels) {
			return
		}
		f := Finding{Object: obj, Field: "metadata.labels", Reason: ReasonLeavesProtection, format: format}
		action := p.Action
		if allowed(p.PortForwardAllowed, who) {
			action = v1alpha1.ActionAudit
			f.format = format + " (let through: the requester is among the policy's spec.portForward.allowed subjects)"
		}
		c.add(f, p, action)
	})
	return c.findings
}

// incomplete is the finding of a review that stopped early: the strictest
// action of the policies that apply in env's namespace (a review cut short
// where only Warn policies apply warns), none when none applies.
func incomplete(env *Env, obj runtime.Object) []Finding {
	var action v1alpha1.EnforcementAction
	env.each(func(p *Policy) {
		if action == "" {
			action = p.Action
		}
		action = Stricter(action, p.Action)
	})
	if action == "" {
		switch obj.(type) {
		case *discoveryv1.EndpointSlice, *corev1.Endpoints:
			// Judged by the policies of the pods they reach, in any
			// namespace: which ones is what the review could not finish.
			action = v1alpha1.ActionDeny
		default:
			return nil
		}
	}
	return []Finding{{
		Object: objectRef(obj), Reason: ReasonReviewIncomplete, Action: action,
		format: fmt.Sprintf("is too large for loopguard to review within its limits (the admission deadline, or %d units of work: its ports times the pods, templates and Services they meet); it is refused rather than admitted unjudged; split it into smaller objects",
			maxReviewWork),
	}}
}

// objectRef names any object the rules judge.
func objectRef(obj runtime.Object) ObjectRef {
	if t, ok := PodTemplateOf(obj); ok {
		return t.Object
	}
	switch o := obj.(type) {
	case *corev1.Service:
		return ObjectRef{Kind: "Service", Namespace: o.Namespace, Name: objectName(o.Name, o.GenerateName)}
	case *discoveryv1.EndpointSlice:
		return ObjectRef{Kind: "EndpointSlice", Namespace: o.Namespace, Name: objectName(o.Name, o.GenerateName)}
	case *corev1.Endpoints:
		return ObjectRef{Kind: "Endpoints", Namespace: o.Namespace, Name: objectName(o.Name, o.GenerateName)}
	}
	return ObjectRef{Kind: fmt.Sprintf("%T", obj)}
}

// decide aggregates findings into a decision with bounded messages: the
// strictest findings first, at most maxReportedFindings per action.
func decide(findings []Finding) Decision {
	d := Decide(findings)
	if d.Action == "" {
		return Decision{}
	}
	sort.SliceStable(findings, func(i, j int) bool { return severity(findings[i].Action) > severity(findings[j].Action) })
	kept := findings[:0]
	counts := map[v1alpha1.EnforcementAction]int{}
	var deny []string
	for _, f := range findings {
		counts[f.Action]++
		if counts[f.Action] > maxReportedFindings {
			d.Omitted++
			continue
		}
		kept = append(kept, f)
		switch f.Action {
		case v1alpha1.ActionDeny:
			deny = append(deny, f.Message())
		case v1alpha1.ActionWarn:
			d.Warnings = append(d.Warnings, f.Message())
		}
	}
	d.Findings = kept
	if n := counts[v1alpha1.ActionWarn] - maxReportedFindings; n > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("and %d more loopback-only port exposures (Warn)", n))
	}
	d.Denial = denial(deny, counts[v1alpha1.ActionDeny])
	return d
}

// denial joins the messages of the Deny findings shown, of total.
func denial(msgs []string, total int) string {
	if len(msgs) == 0 {
		return ""
	}
	if total == 1 {
		return msgs[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d loopback-only port exposures:", total)
	for i, m := range msgs {
		fmt.Fprintf(&b, " (%d) %s", i+1, m)
		if i < len(msgs)-1 {
			b.WriteString(";")
		}
	}
	if n := total - len(msgs); n > 0 {
		fmt.Fprintf(&b, "; and %d more exposures", n)
	}
	return b.String()
}

// budget bounds the work of a review: units of work, and a channel that
// closes at the request's deadline. A nil budget is unlimited (the audit
// and the CLI judge what exists, with no deadline).
type budget struct {
	left    int
	done    <-chan struct{}
	calls   int
	stopped bool
}

// spend takes n units; false once the budget is exhausted or done is
// closed (checked every 64 calls, and on the first), after which the
// caller stops.
func (b *budget) spend(n int) bool {
	if b == nil {
		return true
	}
	if b.stopped {
		return false
	}
	b.left -= n
	if b.left < 0 {
		b.stopped = true
		return false
	}
	if b.done != nil && b.calls%64 == 0 {
		select {
		case <-b.done:
			b.stopped = true
			return false
		default:
		}
	}
	b.calls++
	return true
}
