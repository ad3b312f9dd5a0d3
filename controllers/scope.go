package controllers

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/rules"
	"github.com/loopguard/loopguard/internal/workloads"
)

// observation is what one policy finds in one namespace.
type observation struct {
	matchedPods     int32
	findings        []rules.Finding
	conflicts       []netpol.Conflict
	hostNetworkPods []v1alpha1.HostNetworkPod
	// matched are the selected pods, for the node-mates.
	matched []*corev1.Pod
}

// observe audits a namespace against one policy with the same rules the
// webhook uses (rules.Evaluate), reading only from the cache: the
// namespace's objects, and the hand-written EndpointSlices of any
// namespace that reach its selected pods.
func observe(ctx context.Context, c client.Reader, p *rules.Policy, namespace string, nsLabels labels.Set) (*observation, error) {
	env := &rules.Env{Namespace: namespace, NamespaceLabels: nsLabels, Sets: []*rules.Set{rules.NewSet([]*rules.Policy{p})}}
	in := client.InNamespace(namespace)
	var pods corev1.PodList
	if err := c.List(ctx, &pods, in); err != nil {
		return nil, fmt.Errorf("failed to list pods: %w", err)
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs, in); err != nil {
		return nil, fmt.Errorf("failed to list services: %w", err)
	}
	cluster := rules.Cluster{}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			cluster.Pods = append(cluster.Pods, &pods.Items[i])
		}
	}
	for i := range svcs.Items {
		cluster.Services = append(cluster.Services, &svcs.Items[i])
	}
	wls, err := workloads.ListAll(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	owners := rules.NewOwners(wls)
	cluster.Workloads = workloads.Unowned(wls, owners)
	// Endpoints anywhere are judged against this namespace's pods only:
	// the other namespaces in scope are observed on their own.
	cluster.Resolver = rules.NewResolver(cluster.Pods, func(ns string) *rules.Env {
		if ns == namespace {
			return env
		}
		return nil
	})

	obs := &observation{}
	for _, pod := range cluster.Pods {
		if !p.Selector.Matches(labels.Set(pod.Labels)) {
			continue
		}
		obs.matchedPods++
		obs.matched = append(obs.matched, pod)
		if pod.Spec.HostNetwork {
			obs.hostNetworkPods = append(obs.hostNetworkPods, v1alpha1.HostNetworkPod{Namespace: pod.Namespace, Name: pod.Name, Node: pod.Spec.NodeName})
		}
	}

	var objects []runtime.Object
	for _, pod := range cluster.Pods {
		if !rules.OwnedByWorkload(pod, owners) {
			objects = append(objects, pod)
		}
	}
	for _, svc := range cluster.Services {
		objects = append(objects, svc)
	}
	objects = append(objects, cluster.Workloads...)
	// Hand-written slices of any namespace that list the selected pods'
	// IPs or name them (CVE-2021-25740: the slice need not be in the
	// pods' namespace).
	slices, err := addrindex.SlicesNaming(ctx, c, obs.matched)
	if err != nil {
		return nil, err
	}
	for _, s := range slices {
		objects = append(objects, s)
	}
	for _, o := range objects {
		obs.findings = append(obs.findings, rules.Evaluate(env, o, cluster)...)
	}

	var nps networkingv1.NetworkPolicyList
	if err := c.List(ctx, &nps, in); err != nil {
		return nil, fmt.Errorf("failed to list networkpolicies: %w", err)
	}
	obs.conflicts = networkPolicyConflicts(p, nps.Items, cluster.Pods)
	return obs, nil
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
