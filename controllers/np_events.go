package controllers

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
)

// maxNamespacesNamed bounds the namespaces an Event about many managed
// NetworkPolicies names; the rest are counted.
const maxNamespacesNamed = 10

// networkPolicyChanges collects what one reconcile did to a policy's
// managed NetworkPolicies, by reason, so that it announces them in one
// Event per reason. A cluster policy reaching 3,000 namespaces writes a
// few Events, not 3,000: each is an API write that competes with the
// NetworkPolicies themselves (a third of the writes at 150,000 pods).
type networkPolicyChanges map[string][]string // reason → namespaces

const (
	npCreated  = "NetworkPolicyCreated"
	npUpdated  = "NetworkPolicyUpdated"
	npRepaired = "NetworkPolicyRepaired"
	npRemoved  = "NetworkPolicyRemoved"
)

func (c networkPolicyChanges) add(reason, namespace string) {
	if reason != "" {
		c[reason] = append(c[reason], namespace)
	}
}

// announce emits the Events of c on obj, whose managed NetworkPolicies
// are named name; protected describes its ports.
func (c networkPolicyChanges) announce(rec events.EventRecorder, obj policyObject, name, protected string) {
	for _, reason := range []string{npCreated, npUpdated, npRepaired, npRemoved} {
		nss := c[reason]
		if len(nss) == 0 {
			continue
		}
		what := "NetworkPolicy " + nss[0] + "/" + name
		if len(nss) > 1 {
			what = fmt.Sprintf("NetworkPolicy %s in %d namespaces (%s)", name, len(nss), namedNamespaces(nss))
		}
		switch reason {
		case npCreated:
			rec.Eventf(obj, nil, corev1.EventTypeNormal, reason, "Apply", "created %s to block ingress to %s", what, protected)
		case npUpdated:
			rec.Eventf(obj, nil, corev1.EventTypeNormal, reason, "Apply", "updated %s: it keeps closed the ports of every policy whose pods may be this policy's", what)
		case npRepaired:
			rec.Eventf(obj, nil, corev1.EventTypeWarning, reason, "Apply", "%s had drifted from what the policy requires and was restored", what)
		case npRemoved:
			rec.Eventf(obj, nil, corev1.EventTypeNormal, reason, "Delete", "removed %s: spec.networkPolicy is Disabled", what)
		}
	}
}

// namedNamespaces lists the first maxNamespacesNamed of nss, sorted, and
// counts the rest.
func namedNamespaces(nss []string) string {
	sorted := append([]string(nil), nss...)
	sort.Strings(sorted)
	if len(sorted) <= maxNamespacesNamed {
		return strings.Join(sorted, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(sorted[:maxNamespacesNamed], ", "), len(sorted)-maxNamespacesNamed)
}
