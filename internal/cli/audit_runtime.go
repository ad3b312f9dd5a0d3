package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// reportRuntime is what the node agents observed (NodeBindReports) of the
// audited pods: the protected ports that really listen beyond loopback.
// Absent when the cluster has no NodeBindReports (no agent installed) or
// audit may not read them.
type reportRuntime struct {
	// PodsChecked are audited running pods a fresh report says were
	// checked; PodsUnchecked the others (no agent on their node, a stale
	// report, or a pod the agent could not check).
	PodsChecked   int `json:"podsChecked"`
	PodsUnchecked int `json:"podsUnchecked"`
	// Listeners are the protected ports listening beyond loopback.
	Listeners []reportRuntimeListener `json:"listeners"`
	// StaleNodes are nodes of audited pods without a fresh report.
	StaleNodes []string `json:"staleNodes"`
}

// reportRuntimeListener is one protected port of a pod that listens on an
// address other than 127.0.0.0/8 or ::1.
type reportRuntimeListener struct {
	// Policies protect the port for the pod; Action is the strictest of
	// their enforcementActions.
	Policies    []reportPolicy `json:"policies"`
	Action      string         `json:"action"`
	Namespace   string         `json:"namespace"`
	Pod         string         `json:"pod"`
	Node        string         `json:"node"`
	HostNetwork bool           `json:"hostNetwork,omitempty"`
	Container   string         `json:"container,omitempty"`
	Process     string         `json:"process,omitempty"`
	PID         int64          `json:"pid,omitempty"`
	Protocol    string         `json:"protocol"`
	Address     string         `json:"address"`
	Port        int32          `json:"port"`
	// ScannedAt is when the agent's scan that saw it ended.
	ScannedAt time.Time `json:"scannedAt"`
}

// readReports lists the NodeBindReports, by node. A cluster without the
// CRD, or a user who may not list them, gets no runtime section (the
// latter with a warning).
func readReports(ctx context.Context, c client.Reader, rep *auditReport) map[string]*v1alpha1.NodeBindReport {
	var list v1alpha1.NodeBindReportList
	err := c.List(ctx, &list)
	switch {
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		return nil
	case apierrors.IsForbidden(err):
		rep.Warnings = append(rep.Warnings, "cannot list NodeBindReports (forbidden): runtime findings of the node agents are not shown")
		return nil
	case err != nil:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("cannot list NodeBindReports: %v; runtime findings are not shown", err))
		return nil
	}
	if len(list.Items) == 0 {
		return nil
	}
	out := make(map[string]*v1alpha1.NodeBindReport, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out
}

// judgeRuntime reads, for every running pod of the audited namespaces that
// a policy selects, its node's report, with the rules the controller
// applies: a stale report checks nothing, and a report speaks only of the
// pods of its own node, matched by UID.
func (st *clusterState) judgeRuntime(envs map[string]*rules.Env, reports map[string]*v1alpha1.NodeBindReport, now time.Time, rep *auditReport) {
	if reports == nil {
		return
	}
	rt := &reportRuntime{Listeners: []reportRuntimeListener{}, StaleNodes: []string{}}
	stale := map[string]bool{}
	for _, ns := range sortedKeys(envs) {
		env := envs[ns]
		for _, pod := range st.pods[ns] {
			if pod.NodeName == "" || pod.Phase != corev1.PodRunning {
				continue
			}
			policies := env.MatchingPolicies(labels.Set(pod.Labels))
			if len(policies) == 0 {
				continue
			}
			r := reports[pod.NodeName]
			if r == nil || !now.Before(r.StaleAt()) {
				rt.PodsUnchecked++
				stale[pod.NodeName] = true
				continue
			}
			pr := podEntry(r, pod)
			if pr == nil || pr.Unchecked != "" {
				rt.PodsUnchecked++
				continue
			}
			rt.PodsChecked++
			for _, l := range pr.Listeners {
				var refs []reportPolicy
				var actions []v1alpha1.EnforcementAction
				for _, p := range policies {
					if _, ok := p.Protects(l.Protocol, l.Port); ok {
						refs = append(refs, refOf(p.Ref))
						actions = append(actions, p.Action)
					}
				}
				if len(refs) == 0 {
					continue
				}
				sort.Slice(refs, func(i, j int) bool { return shortPolicy(refs[i]) < shortPolicy(refs[j]) })
				action := actions[0]
				for _, a := range actions[1:] {
					action = rules.Stricter(action, a)
				}
				rt.Listeners = append(rt.Listeners, reportRuntimeListener{
					Policies: refs, Action: string(action), Namespace: pod.Namespace, Pod: pod.Name, Node: pod.NodeName,
					HostNetwork: pr.HostNetwork, Container: l.Container, Process: l.Process, PID: l.PID,
					Protocol: string(l.Protocol), Address: l.Address, Port: l.Port, ScannedAt: r.Status.ScannedAt.Time,
				})
			}
		}
	}
	sort.SliceStable(rt.Listeners, func(i, j int) bool {
		a, b := rt.Listeners[i], rt.Listeners[j]
		if a.Namespace+"/"+a.Pod != b.Namespace+"/"+b.Pod {
			return a.Namespace+"/"+a.Pod < b.Namespace+"/"+b.Pod
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.Port < b.Port
	})
	rt.StaleNodes = append(rt.StaleNodes, sortedKeys(stale)...)
	rep.Runtime = rt
}

func podEntry(r *v1alpha1.NodeBindReport, pod *podview.Pod) *v1alpha1.PodBindReport {
	for i := range r.Status.Pods {
		if p := &r.Status.Pods[i]; p.UID == pod.UID && p.Namespace == pod.Namespace && p.Name == pod.Name {
			return p
		}
	}
	return nil
}

// runtimeRows are the table rows of the runtime findings.
func runtimeRows(rt *reportRuntime) [][]string {
	var rows [][]string
	for _, l := range rt.Listeners {
		addr := l.Address
		if len(addr) > 0 && addr[0] != '[' && strings.Contains(addr, ":") {
			addr = "[" + addr + "]"
		}
		node := l.Node
		if l.HostNetwork {
			node += " (hostNetwork)"
		}
		rows = append(rows, []string{shortPolicies(l.Policies), nsName(l.Namespace, l.Pod), node, orNone(l.Container), orNone(l.Process),
			addr + ":" + strconv.Itoa(int(l.Port)) + "/" + l.Protocol, l.Action})
	}
	return rows
}
