// Package webhookconfig computes loopguard's ValidatingWebhookConfiguration
// from the policies: which webhooks exist, which namespaces each is called
// for, and which policies the result covers. It is pure (data in,
// configuration out, no client): controllers/webhookconfig_controller.go
// applies what Desired returns.
package webhookconfig

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// Scope says which namespaces a webhook is called for.
type Scope int

const (
	// ScopePolicies: only the namespaces some policy applies to (a
	// namespaced policy's own namespace, a cluster policy's
	// namespaceSelector). Everything a webhook of this scope judges is
	// decided by the policies of the request's own namespace.
	ScopePolicies Scope = iota
	// ScopeCluster: every namespace but the excluded ones, as long as some
	// policy exists. For what can expose pods of another namespace
	// (hand-written Endpoints and EndpointSlices name addresses, not
	// pods): its own namespace having no policy proves nothing.
	ScopeCluster
)

// Kind is what the registration adds to a generated webhook template:
// its scope and the matchConditions that let the API server decide
// in-process what cannot change the outcome.
type Kind struct {
	Scope           Scope
	MatchConditions []admissionregistrationv1.MatchCondition
}

// exposureMayChange: an update that keeps the spec introduces nothing (a
// Service's selector and ports, a workload's pod template decide). Written
// so that it cannot fail to evaluate: a missing field calls the webhook.
var exposureMayChange = admissionregistrationv1.MatchCondition{
	Name:       "exposure-may-change",
	Expression: "request.operation != 'UPDATE' || !has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec",
}

// Kinds maps every webhook name of the generated templates (the
// +kubebuilder:webhook markers in webhooks/) to its scope and match
// conditions. A template without an entry is an error (Desired), so a new
// marker cannot be registered unscoped by accident.
var Kinds = map[string]Kind{
	"pods.loopguard.io": {Scope: ScopePolicies, MatchConditions: []admissionregistrationv1.MatchCondition{{
		// Mirror pods of static pods (the control plane's own) are
		// created by kubelets and must not depend on loopguard being up;
		// what they expose, the audit reports.
		Name:       "not-a-kubelet-mirror-pod",
		Expression: "!request.userInfo.username.startsWith('system:node:')",
	}, {
		// An update judges only what it introduces (webhooks/validator.go):
		// one that keeps labels and spec introduces nothing.
		Name: "exposure-may-change",
		Expression: "request.operation != 'UPDATE' || " +
			"!has(object.metadata.labels) || !has(oldObject.metadata.labels) || " +
			"object.metadata.labels != oldObject.metadata.labels || " +
			"!has(object.spec) || !has(oldObject.spec) || object.spec != oldObject.spec",
	}}},
	"services.loopguard.io":               {Scope: ScopePolicies, MatchConditions: []admissionregistrationv1.MatchCondition{exposureMayChange}},
	"workloads.loopguard.io":              {Scope: ScopePolicies, MatchConditions: []admissionregistrationv1.MatchCondition{exposureMayChange}},
	"replicationcontrollers.loopguard.io": {Scope: ScopePolicies, MatchConditions: []admissionregistrationv1.MatchCondition{exposureMayChange}},
	"portforward.loopguard.io":            {Scope: ScopePolicies},
	"exec.loopguard.io":                   {Scope: ScopePolicies},
	"proxy.loopguard.io":                  {Scope: ScopePolicies},
	"debug.loopguard.io":                  {Scope: ScopePolicies},
	"endpoints.loopguard.io": {Scope: ScopeCluster, MatchConditions: []admissionregistrationv1.MatchCondition{{
		// Only hand-written endpoints are loopguard's to judge: the
		// control plane writes the rest from what was judged already, and
		// the API server's own writes must never wait for loopguard.
		Name: "written-by-a-user",
		Expression: "!(request.userInfo.username in [" +
			"'system:apiserver', " +
			"'system:kube-controller-manager', " +
			"'system:serviceaccount:kube-system:endpoint-controller', " +
			"'system:serviceaccount:kube-system:endpointslice-controller', " +
			"'system:serviceaccount:kube-system:endpointslicemirroring-controller'])",
	}}},
}
