package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Reason codes of findings, as they appear in status and metrics.
const (
	ReasonContainerPort = "ContainerPort"
	ReasonHostPort      = "HostPort"
	ReasonHostNetwork   = "HostNetwork"
	ReasonServiceTarget = "ServiceTarget"
	// ReasonSelectedByService is the pod side of the Service race: an
	// existing Service already targets the protected port of pods with
	// these labels.
	ReasonSelectedByService = "SelectedByService"
)

// ObjectRef names the object under review.
type ObjectRef struct {
	Kind      string
	Namespace string
	Name      string
}

func (o ObjectRef) String() string {
	return fmt.Sprintf("%s %q", strings.ToLower(o.Kind), o.Name)
}

// Finding is one exposure of a protected port by one field of an object.
type Finding struct {
	Object ObjectRef
	// Field is the path of the offending field, e.g.
	// spec.containers[1].ports[0].containerPort.
	Field  string
	Reason string
	// Container names the container, when the field is in one.
	Container string
	Port      int32
	Protocol  corev1.Protocol
	// Policies that protect the port, sorted; Action is the strictest of
	// their enforcement actions.
	Policies []PolicyRef
	Action   v1alpha1.EnforcementAction

	// Related names the other object involved, e.g. the Service that
	// selects a pod; findings merge only when it is the same.
	Related string

	// reach is what a ServiceTarget finding reaches (pods, templates), so
	// that an update is judged on the pods it newly reaches.
	reach *serviceReach

	// format is the message with policiesMark where the policies go; see
	// Message. It is never used as a printf format: names in it are
	// user input.
	format string
}

// policiesMark stands for the list of policies in Finding.format.
const policiesMark = "\x00policies\x00"

// Message says what is exposed, where, which policies forbid it and what to
// do instead.
// At most maxPoliciesInMessage policies are named, then how many more.
func (f Finding) Message() string {
	shown := f.Policies
	if len(shown) > maxPoliciesInMessage {
		shown = shown[:maxPoliciesInMessage]
	}
	refs := make([]string, len(shown), len(shown)+1)
	for i, r := range shown {
		refs[i] = r.String()
	}
	if n := len(f.Policies) - len(shown); n > 0 {
		refs = append(refs, fmt.Sprintf("%d more policies", n))
	}
	msg := strings.Replace(f.format, policiesMark, strings.Join(refs, " and "), 1)
	msg = strings.Replace(msg, hostNetworkHintMark, HostNetworkHint(f.Action), 1)
	return f.Object.String() + " " + msg
}

// hostNetworkHintMark stands for HostNetworkHint of the finding's action:
// the policies of a merged finding decide it together.
const hostNetworkHintMark = "\x00hostnetwork-hint\x00"

// HostNetworkHint is what a host-network finding tells the user to do, by
// its action: the one text that check, audit, the webhook and the reports
// show. Audit (the policies' hostNetwork: Audit, or their
// enforcementAction) admits the pod: the hint says so instead of asking
// for a fix no policy requires.
func HostNetworkHint(action v1alpha1.EnforcementAction) string {
	if action == v1alpha1.ActionAudit {
		return "admitted and only reported, as the policy's hostNetwork: Audit (or enforcementAction: Audit) asks: " +
			"these ports stay open to every process and hostNetwork pod of the node"
	}
	return "set hostNetwork: false"
}

// maxPoliciesInMessage bounds the policies one message names: a port that
// a thousand policies protect is still one line.
const maxPoliciesInMessage = 5

// severity orders actions; the strictest wins.
func severity(a v1alpha1.EnforcementAction) int {
	switch a {
	case v1alpha1.ActionDeny:
		return 3
	case v1alpha1.ActionWarn:
		return 2
	default:
		return 1
	}
}

// Stricter returns the stricter of two actions.
func Stricter(a, b v1alpha1.EnforcementAction) v1alpha1.EnforcementAction {
	if severity(b) > severity(a) {
		return b
	}
	return a
}

// collector merges findings about the same field from several policies
// into one finding that names them all. Findings merge only when their
// messages agree but for the policies (same port, same pods), so a merged
// message is true for every policy it names. The zero value is ready to
// use. A few findings are matched by a scan; past indexAfter, through a
// map, so an object with tens of thousands of findings is collected in
// linear time.
type collector struct {
	findings []Finding
	index    map[mergeKey]int
}

// indexAfter is the number of findings from which the collector indexes
// them.
const indexAfter = 16

// mergeKey is what findings that merge have in common.
type mergeKey struct {
	object                         ObjectRef
	field, reason, related, format string
}

func (f *Finding) mergeKey() mergeKey {
	return mergeKey{f.Object, f.Field, f.Reason, f.Related, f.format}
}

func (c *collector) find(k mergeKey) (int, bool) {
	if c.index != nil {
		i, ok := c.index[k]
		return i, ok
	}
	for i := range c.findings {
		if c.findings[i].mergeKey() == k {
			return i, true
		}
	}
	return 0, false
}

func (c *collector) add(f Finding, p *Policy, action v1alpha1.EnforcementAction) {
	k := f.mergeKey()
	if i, ok := c.find(k); ok {
		g := &c.findings[i]
		j := sort.Search(len(g.Policies), func(j int) bool { return g.Policies[j].String() >= p.Ref.String() })
		if j < len(g.Policies) && g.Policies[j] == p.Ref {
			return
		}
		g.Policies = slices.Insert(g.Policies, j, p.Ref)
		g.Action = Stricter(g.Action, action)
		return
	}
	f.Policies = []PolicyRef{p.Ref}
	f.Action = action
	c.findings = append(c.findings, f)
	switch {
	case c.index != nil:
		c.index[k] = len(c.findings) - 1
	case len(c.findings) > indexAfter:
		c.index = make(map[mergeKey]int, 2*len(c.findings))
		for i := range c.findings {
			c.index[c.findings[i].mergeKey()] = i
		}
	}
}

func sortRefs(refs []PolicyRef) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
}

// Decision is the verdict of one review.
type Decision struct {
	// Action is the strictest action of all findings; empty when there are
	// none.
	Action   v1alpha1.EnforcementAction
	Findings []Finding

	// Set by Review only. Findings then holds at most maxReportedFindings
	// findings per action, strictest first, and Omitted counts the rest.
	Omitted int
	// Denial is the text of a refusal (Action Deny): the Deny findings'
	// messages, then how many more there were.
	Denial string
	// Warnings are the Warn findings' messages, then how many more.
	Warnings []string
}

// Decide aggregates findings.
func Decide(findings []Finding) Decision {
	d := Decision{Findings: findings}
	for _, f := range findings {
		if d.Action == "" {
			d.Action = f.Action
		} else {
			d.Action = Stricter(d.Action, f.Action)
		}
	}
	return d
}

// Messages returns the messages of the findings with the given action.
func (d Decision) Messages(action v1alpha1.EnforcementAction) []string {
	var out []string
	for _, f := range d.Findings {
		if f.Action == action {
			out = append(out, f.Message())
		}
	}
	return out
}
