package webhookconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// NameLabel is the label the API server sets on every namespace to its
// name; no one can change it, so a selector on it is exact.
const NameLabel = "kubernetes.io/metadata.name"

// Defaults of the bounds (Options).
const (
	DefaultMaxClusterSelectors = 16
	DefaultMaxNamespaces       = 1000
	DefaultMaxDedupNamespaces  = 128
)

// Policy is what the registration reads of a policy.
type Policy struct {
	// Namespace of a LoopbackService; empty for a ClusterLoopbackService.
	Namespace string
	Name      string
	// NamespaceSelector of a ClusterLoopbackService (nil: invalid, the
	// API server requires it).
	NamespaceSelector *metav1.LabelSelector
}

// Key names a policy (Namespace empty for a cluster policy).
type Key struct{ Namespace, Name string }

func (p Policy) key() Key { return Key{p.Namespace, p.Name} }

// Options are what does not come from the policies.
type Options struct {
	// Templates are the generated webhooks (config/webhook.Templates);
	// each must have an entry in Kinds.
	Templates []admissionregistrationv1.ValidatingWebhook
	// ClientConfig says how the API server reaches loopguard: a Service
	// (its path is taken from each template) or a URL base (the
	// template's path is appended). CABundle is set on every webhook.
	ClientConfig admissionregistrationv1.WebhookClientConfig
	// FailurePolicy, when set, replaces the templates' (Fail).
	FailurePolicy *admissionregistrationv1.FailurePolicyType
	// TimeoutSeconds, when set, replaces the templates' (5).
	TimeoutSeconds *int32
	// Excluded namespaces are never judged: the control plane's and
	// loopguard's own, so that both can recover while loopguard is down.
	Excluded []string
	// MaxClusterSelectors bounds the webhooks per kind: past this many
	// distinct cluster policy selectors, every namespace but the excluded
	// ones is judged (one webhook per kind, as before registration
	// followed the policies).
	MaxClusterSelectors int
	// MaxNamespaces bounds the namespace list of the namespaced-policy
	// webhooks the same way.
	MaxNamespaces int
	// MaxDedupNamespaces: up to this many policy namespaces are excluded
	// from the cluster policies' webhooks, so that a namespace with both
	// kinds of policy is called once; past it, such a namespace is called
	// once per matching webhook (correct, slower), and the configuration
	// stays small.
	MaxDedupNamespaces int
}

func (o *Options) defaults() {
	if o.MaxClusterSelectors <= 0 {
		o.MaxClusterSelectors = DefaultMaxClusterSelectors
	}
	if o.MaxNamespaces <= 0 {
		o.MaxNamespaces = DefaultMaxNamespaces
	}
	if o.MaxDedupNamespaces <= 0 {
		o.MaxDedupNamespaces = DefaultMaxDedupNamespaces
	}
}

// Mode is how the result scopes the webhooks.
type Mode string

const (
	// ModeNone: no policy, no webhook; nothing is judged, nothing waits
	// for loopguard.
	ModeNone Mode = "None"
	// ModeScoped: the webhooks are called only where a policy applies.
	ModeScoped Mode = "Scoped"
	// ModeEverywhere: a cluster policy selects every namespace, or the
	// bounds were passed; every namespace but the excluded is judged.
	ModeEverywhere Mode = "Everywhere"
)

// Coverage says whether the configuration covers a policy, and why not.
type Coverage struct {
	Covered bool
	// Reason is a condition reason (CamelCase), Message its text.
	Reason, Message string
}

// Coverage reasons.
const (
	ReasonRegistered        = "Registered"
	ReasonNamespaceExcluded = "NamespaceExcluded"
	ReasonInvalidSelector   = "InvalidSelector"
)

// Result is the desired webhook list and what it covers.
type Result struct {
	Webhooks []admissionregistrationv1.ValidatingWebhook
	Coverage map[Key]Coverage
	Mode     Mode
	// Why explains ModeEverywhere.
	Why string
}

// group is the set of namespaces one webhook per scoped kind is called for.
type group struct {
	suffix   string // "" for the base name
	selector *metav1.LabelSelector
}

// clusterSelector is a valid cluster policy selector, canonicalised.
type clusterSelector struct {
	canon    string
	reqs     []string // canonical requirement strings, sorted
	selector *metav1.LabelSelector
	policies []string // names, sorted
}

// Desired computes the webhooks for the policies.
func Desired(policies []Policy, o Options) (Result, error) {
	o.defaults()
	excluded := sortedSet(o.Excluded)
	res := Result{Coverage: map[Key]Coverage{}, Mode: ModeScoped}
	for _, t := range o.Templates {
		if _, ok := Kinds[t.Name]; !ok {
			return Result{}, fmt.Errorf("webhook %s has no entry in webhookconfig.Kinds (its scope and match conditions)", t.Name)
		}
	}

	// Namespaced policies: their namespaces, minus the excluded.
	var nsList []string
	selectors := map[string]*clusterSelector{}
	everywhere := ""
	for _, p := range policies {
		if p.Namespace != "" {
			if slices.Contains(excluded, p.Namespace) {
				res.Coverage[p.key()] = Coverage{Reason: ReasonNamespaceExcluded, Message: fmt.Sprintf(
					"namespace %s is never sent to loopguard's webhooks (excluded so that the control plane and loopguard can recover while loopguard is down): nothing in it is judged at admission; the audit still reports it", p.Namespace)}
				continue
			}
			nsList = append(nsList, p.Namespace)
			continue
		}
		cs, err := canonical(p.NamespaceSelector)
		if err != nil {
			res.Coverage[p.key()] = Coverage{Reason: ReasonInvalidSelector, Message: fmt.Sprintf("spec.namespaceSelector: %v; no webhook is registered for this policy", err)}
			continue
		}
		if len(cs.reqs) == 0 && everywhere == "" {
			everywhere = fmt.Sprintf("ClusterLoopbackService %s selects every namespace", p.Name)
		}
		if prev, ok := selectors[cs.canon]; ok {
			prev.policies = append(prev.policies, p.Name)
			continue
		}
		cs.policies = []string{p.Name}
		selectors[cs.canon] = cs
	}
	nsList = sortedSet(nsList)
	kept := keepMostGeneral(selectors)
	switch {
	case len(policies) == 0:
		res.Mode = ModeNone
		return res, nil
	case everywhere != "":
		res.Mode, res.Why = ModeEverywhere, everywhere
	case len(kept) > o.MaxClusterSelectors:
		res.Mode, res.Why = ModeEverywhere, fmt.Sprintf("%d distinct ClusterLoopbackService namespace selectors, more than %d", len(kept), o.MaxClusterSelectors)
	case len(nsList) > o.MaxNamespaces:
		res.Mode, res.Why = ModeEverywhere, fmt.Sprintf("LoopbackServices in %d namespaces, more than %d", len(nsList), o.MaxNamespaces)
	}

	everyExcept := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: NameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: excluded}}}
	var groups []group
	if res.Mode == ModeEverywhere {
		groups = []group{{selector: everyExcept}}
	} else {
		if len(nsList) > 0 {
			groups = append(groups, group{selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: NameLabel, Operator: metav1.LabelSelectorOpIn, Values: nsList}}}})
		}
		notIn := excluded
		if len(nsList) <= o.MaxDedupNamespaces {
			notIn = sortedSet(append(slices.Clone(excluded), nsList...))
		}
		for _, cs := range kept {
			sel := cs.selector.DeepCopy()
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: NameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: notIn})
			groups = append(groups, group{suffix: cs.policies[0], selector: sel})
		}
	}

	for _, t := range o.Templates {
		k := Kinds[t.Name]
		if k.Scope == ScopeCluster {
			res.Webhooks = append(res.Webhooks, o.webhook(t, k, "", everyExcept))
			continue
		}
		for _, g := range groups {
			res.Webhooks = append(res.Webhooks, o.webhook(t, k, g.suffix, g.selector))
		}
	}

	// What the webhooks cover.
	scoped := scopedNames(o.Templates)
	for _, p := range policies {
		if _, done := res.Coverage[p.key()]; done {
			continue
		}
		var names []string
		switch {
		case res.Mode == ModeEverywhere:
			names = scoped
		case p.Namespace != "":
			names = scoped
		default:
			cs, _ := canonical(p.NamespaceSelector)
			by := coveringSelector(selectors[cs.canon], kept)
			for _, n := range scoped {
				names = append(names, entryName(n, by.policies[0]))
			}
		}
		where := "in namespace " + p.Namespace
		if p.Namespace == "" {
			where = "in every namespace its namespaceSelector selects"
		}
		if p.Namespace == "" && len(excluded) > 0 {
			where += " (never in " + strings.Join(excluded, ", ") + ")"
		}
		res.Coverage[p.key()] = Coverage{Covered: true, Reason: ReasonRegistered, Message: fmt.Sprintf(
			"the API server sends loopguard every write and access it judges %s: webhooks %s", where, strings.Join(names, ", "))}
	}
	return res, nil
}

// webhook instantiates template t for one group of namespaces.
func (o Options) webhook(t admissionregistrationv1.ValidatingWebhook, k Kind, suffix string, sel *metav1.LabelSelector) admissionregistrationv1.ValidatingWebhook {
	w := *t.DeepCopy()
	w.Name = entryName(t.Name, suffix)
	path := ""
	if t.ClientConfig.Service != nil && t.ClientConfig.Service.Path != nil {
		path = *t.ClientConfig.Service.Path
	}
	cc := *o.ClientConfig.DeepCopy()
	switch {
	case cc.Service != nil:
		cc.Service.Path = &path
		if cc.Service.Port == nil {
			port := int32(443) // the API server's default, so that what is read back equals what was written
			cc.Service.Port = &port
		}
	case cc.URL != nil:
		u := strings.TrimSuffix(*cc.URL, "/") + path
		cc.URL = &u
	}
	w.ClientConfig = cc
	w.NamespaceSelector = sel.DeepCopy()
	w.ObjectSelector = &metav1.LabelSelector{} // the API server's default
	// Every rule's scope defaults to "*": unset here, the stored
	// configuration never equals Desired and each reconcile rewrites it
	// (TestDesiredIsWhatTheAPIServerStores).
	for i := range w.Rules {
		if w.Rules[i].Scope == nil {
			all := admissionregistrationv1.AllScopes
			w.Rules[i].Scope = &all
		}
	}
	if o.FailurePolicy != nil {
		fp := *o.FailurePolicy
		w.FailurePolicy = &fp
	}
	if o.TimeoutSeconds != nil {
		t := *o.TimeoutSeconds
		w.TimeoutSeconds = &t
	}
	w.MatchConditions = slices.Clone(k.MatchConditions)
	return w
}

// entryName is the webhook name of template base for a cluster policy
// group (suffix: the group's first policy), or base itself.
func entryName(base, suffix string) string {
	if suffix == "" {
		return base
	}
	kind := strings.TrimSuffix(base, ".loopguard.io")
	n := kind + "." + suffix + ".cluster.loopguard.io"
	if len(n) > 253 {
		sum := sha256.Sum256([]byte(suffix))
		n = kind + ".c" + hex.EncodeToString(sum[:6]) + ".cluster.loopguard.io"
	}
	return n
}

func scopedNames(templates []admissionregistrationv1.ValidatingWebhook) []string {
	var out []string
	for _, t := range templates {
		if Kinds[t.Name].Scope == ScopePolicies {
			out = append(out, t.Name)
		}
	}
	return out
}

// canonical parses a selector into its canonical requirements.
func canonical(sel *metav1.LabelSelector) (*clusterSelector, error) {
	if sel == nil {
		return nil, fmt.Errorf("missing")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	reqs, selectable := s.Requirements()
	if !selectable {
		return nil, fmt.Errorf("selects nothing")
	}
	cs := &clusterSelector{selector: sel.DeepCopy()}
	for _, r := range reqs {
		cs.reqs = append(cs.reqs, r.String())
	}
	slices.Sort(cs.reqs)
	cs.canon = labels.NewSelector().Add(reqs...).String()
	return cs, nil
}

// keepMostGeneral drops every selector whose requirements include all of
// another's (it selects a subset of what that one selects, whose webhook
// covers it), and returns the rest sorted by their first policy's name.
func keepMostGeneral(all map[string]*clusterSelector) []*clusterSelector {
	list := make([]*clusterSelector, 0, len(all))
	for _, cs := range all {
		slices.Sort(cs.policies)
		list = append(list, cs)
	}
	var kept []*clusterSelector
	for _, cs := range list {
		if coveringSelector(cs, list) == cs {
			kept = append(kept, cs)
		}
	}
	slices.SortFunc(kept, func(a, b *clusterSelector) int { return strings.Compare(a.policies[0], b.policies[0]) })
	return kept
}

// coveringSelector is the most general selector of set whose requirements
// are a subset of cs's (cs itself when none is), ties broken by canonical
// form so the choice is stable.
func coveringSelector(cs *clusterSelector, set []*clusterSelector) *clusterSelector {
	best := cs
	for _, o := range set {
		if o == cs || !subset(o.reqs, cs.reqs) {
			continue
		}
		if len(o.reqs) < len(best.reqs) || (len(o.reqs) == len(best.reqs) && o.canon < best.canon) {
			best = o
		}
	}
	return best
}

func subset(a, b []string) bool {
	for _, r := range a {
		if _, ok := slices.BinarySearch(b, r); !ok {
			return false
		}
	}
	return true
}

func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}
