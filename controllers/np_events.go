package controllers

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
)

// maxNamespacesNamed bounds the namespaces an Event about many managed
// NetworkPolicies names; the rest are counted. maxNoteBytes keeps a note
// under the API's 1,024-byte limit (a longer one is refused, and the
// recorder drops it), whatever the names and ports.
const (
	maxNamespacesNamed = 10
	maxNoteBytes       = 1000
)

// networkPolicyChanges collects what one reconcile did to a policy's
// managed NetworkPolicies, by reason, and announces them: one Event per
// reason naming the namespaces, where one Event per NetworkPolicy would
// fold into the first (the recorder keys a series on the reason and the
// policy, not the note) and keep only its namespace. A repair (a
// NetworkPolicy someone else changed, restored) is a Warning of its own
// per NetworkPolicy, with it as the related object, so that none folds
// into another.
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
	for _, ns := range c[npRepaired] {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		rec.Eventf(obj, np, corev1.EventTypeWarning, npRepaired, "Apply", "%s", fitNote(fmt.Sprintf(
			"NetworkPolicy %s/%s had drifted from what the policy requires and was restored", ns, name)))
	}
	for _, reason := range []string{npCreated, npUpdated, npRemoved} {
		nss := c[reason]
		if len(nss) == 0 {
			continue
		}
		sort.Strings(nss)
		note := func(named int) string {
			what := "NetworkPolicy " + nss[0] + "/" + name
			if len(nss) > 1 {
				what = fmt.Sprintf("NetworkPolicy %s in %d namespaces%s", name, len(nss), namedNamespaces(nss, named))
			}
			switch reason {
			case npCreated:
				return fmt.Sprintf("created %s to block ingress to %s", what, protected)
			case npUpdated:
				return fmt.Sprintf("updated %s: it keeps closed the ports of every policy whose pods may be this policy's", what)
			default:
				return fmt.Sprintf("removed %s: spec.networkPolicy is Disabled", what)
			}
		}
		typ, action := corev1.EventTypeNormal, "Apply"
		if reason == npRemoved {
			action = "Delete"
		}
		rec.Eventf(obj, nil, typ, reason, action, "%s", fitNames(note))
	}
}

// fitNames is note naming as many namespaces as fit in maxNoteBytes, at
// most maxNamespacesNamed.
func fitNames(note func(named int) string) string {
	for k := maxNamespacesNamed; k > 0; k-- {
		if s := note(k); len(s) <= maxNoteBytes {
			return s
		}
	}
	return fitNote(note(0))
}

// fitNote cuts s to maxNoteBytes.
func fitNote(s string) string {
	if len(s) <= maxNoteBytes {
		return s
	}
	return strings.ToValidUTF8(s[:maxNoteBytes-3], "") + "..."
}

// namedNamespaces is " (a, b, … and 3 more)" for the first named of the
// sorted nss, "" for none.
func namedNamespaces(nss []string, named int) string {
	if named <= 0 {
		return ""
	}
	if len(nss) <= named {
		return " (" + strings.Join(nss, ", ") + ")"
	}
	return fmt.Sprintf(" (%s and %d more)", strings.Join(nss[:named], ", "), len(nss)-named)
}
