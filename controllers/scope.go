package controllers

import (
	"context"
	"fmt"
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// observation is what one policy finds in one namespace.
type observation struct {
	matchedPods     int32
	findings        []rules.Finding
	conflicts       []netpol.Conflict
	hostNetworkPods []v1alpha1.HostNetworkPod
	// matched are the selected pods, for the node-mates.
	matched []*podview.Pod
	// judged are the objects the audit judged, with their findings (the
	// namespace's OpenReports Report lists the compliant ones too).
	judged []rules.Judged
}

// observe audits a namespace against one policy with the same rules the
// webhook uses (rules.Audit), reading only from the cache: the
// namespace's objects, and the hand-written EndpointSlices of any
// namespace that reach its selected pods.
func observe(ctx context.Context, c client.Reader, p *rules.Policy, namespace string, nsLabels labels.Set) (*observation, error) {
	in, err := gatherAudit(ctx, c, p, namespace, nsLabels)
	if err != nil {
		return nil, err
	}
	return in.audit(), nil
}

// auditInputs are everything one policy's audit of one namespace reads:
// the engine's snapshot, and the pods the policy selects in it.
type auditInputs struct {
	snap     rules.Snapshot
	nsLabels labels.Set
	matched  []*podview.Pod
}

// gatherAudit reads the inputs of observe from the cache, without copies:
// the engine only reads them.
func gatherAudit(ctx context.Context, c client.Reader, p *rules.Policy, namespace string, nsLabels labels.Set) (*auditInputs, error) {
	in := &auditInputs{nsLabels: nsLabels, snap: rules.Snapshot{
		Env: rules.NewEnv(namespace, nsLabels, rules.NewSet([]*rules.Policy{p})),
		// The reconcile has just written p's own NetworkPolicy; the cache
		// may not show it yet.
		OwnNetworkPoliciesWritten: true,
	}}
	snap := &in.snap
	for _, k := range kinds.Watched() {
		if k.Role == kinds.RoleEndpoints {
			continue // those that reach the selected pods, below
		}
		if k.Role == kinds.RolePod {
			pods, err := clusterindex.PodsInNamespace(ctx, c, namespace)
			if err != nil {
				return nil, err
			}
			for _, pod := range pods {
				snap.Add(pod)
			}
			continue
		}
		items, err := clusterindex.Objects(ctx, c, k.Exemplar, k.NewList, namespace)
		if err != nil {
			return nil, fmt.Errorf("failed to list %s: %w", k.Resource, err)
		}
		for _, o := range items {
			snap.Add(o)
		}
	}
	nps, err := clusterindex.Objects(ctx, c, npExemplar, newNetworkPolicyList, namespace)
	if err != nil {
		return nil, fmt.Errorf("failed to list networkpolicies: %w", err)
	}
	for _, o := range nps {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok {
			snap.NetworkPolicies = append(snap.NetworkPolicies, np)
		}
	}
	in.matched = snap.Selected()
	// Hand-written slices of any namespace that list the selected pods'
	// IPs or name them (CVE-2021-25740: the slice need not be in the
	// pods' namespace), judged against this namespace's pods only: the
	// other namespaces in scope are observed on their own.
	if snap.EndpointSlices, err = addrindex.SlicesNaming(ctx, c, in.matched); err != nil {
		return nil, err
	}
	return in, nil
}

// audit runs the engine over the inputs.
func (in *auditInputs) audit() *observation {
	obs := &observation{matched: in.matched, matchedPods: int32(len(in.matched))}
	rep := rules.Audit(in.snap)
	obs.findings, obs.conflicts, obs.judged = rep.Findings(), rep.Conflicts, rep.Judged
	for _, pod := range obs.matched {
		if pod.TrimmedSpec.HostNetwork {
			obs.hostNetworkPods = append(obs.hostNetworkPods, v1alpha1.HostNetworkPod{Namespace: pod.Namespace, Name: pod.Name, Node: pod.NodeName})
		}
	}
	return obs
}

// violations converts findings to status entries, sorted for stable status.
func violations(findings []rules.Finding) []v1alpha1.Violation {
	out := make([]v1alpha1.Violation, 0, len(findings))
	for _, f := range findings {
		out = append(out, v1alpha1.Violation{
			Kind: f.Object.Kind, Namespace: f.Object.Namespace, Name: f.Object.Name,
			Port: f.Port, Protocol: f.Protocol, Field: f.Field, Reason: f.Reason, Message: f.Message(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Field < b.Field
	})
	return out
}
