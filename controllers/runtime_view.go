package controllers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// staleAt returns when the report goes stale (v1alpha1's one rule). The
// report of a deleted node needs no rule of its own: its pods are deleted
// with the node, findings are matched to live pods, and the agent's
// ownerReference lets the garbage collector remove the report.
func staleAt(r *v1alpha1.NodeBindReport) time.Time { return r.StaleAt() }

// nodeRuntime is one node's report as the runtime controller reads it.
type nodeRuntime struct {
	exists bool
	fresh  bool
	// entries are the report's pods as the cache holds them (read only).
	// A policy looks up few of a node's pods: a map of every entry, built
	// for each node of each reconcile, was a tenth of the manager's heap
	// in use during convergence at 150,000 pods. Lookups scan until a node
	// has had scanLookups of them, then use a map.
	entries []v1alpha1.PodBindReport
	lookups int
	byUID   map[types.UID]*v1alpha1.PodBindReport
}

const scanLookups = 8

// pod is the report's entry for uid, nil when it lists none; of two
// entries for one UID, the last (as a map built in order kept it).
func (n *nodeRuntime) pod(uid types.UID) *v1alpha1.PodBindReport {
	if n.byUID == nil && n.lookups < scanLookups {
		n.lookups++
		for i := len(n.entries) - 1; i >= 0; i-- {
			if n.entries[i].UID == uid {
				return &n.entries[i]
			}
		}
		return nil
	}
	if n.byUID == nil {
		n.byUID = make(map[types.UID]*v1alpha1.PodBindReport, len(n.entries))
		for i := range n.entries {
			n.byUID[n.entries[i].UID] = &n.entries[i]
		}
	}
	return n.byUID[uid]
}

// runtimeView reads NodeBindReports from the cache for one reconcile, each
// node once, without copying them (they are only read).
type runtimeView struct {
	reader client.Reader
	now    time.Time
	nodes  map[string]*nodeRuntime
}

func newRuntimeView(reader client.Reader, now time.Time) *runtimeView {
	return &runtimeView{reader: reader, now: now, nodes: map[string]*nodeRuntime{}}
}

func (v *runtimeView) node(ctx context.Context, name string) (*nodeRuntime, error) {
	if n, ok := v.nodes[name]; ok {
		return n, nil
	}
	var rep v1alpha1.NodeBindReport
	n := &nodeRuntime{}
	err := v.reader.Get(ctx, client.ObjectKey{Name: name}, &rep, client.UnsafeDisableDeepCopy)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("failed to get NodeBindReport %s: %w", name, err)
	default:
		n.exists = true
		n.fresh = v.now.Before(staleAt(&rep))
		n.entries = rep.Status.Pods
	}
	v.nodes[name] = n
	return n, nil
}

// runtimeOf is the runtime view of the selected pods of p, from their
// nodes' reports in the cache: what both the runtime controller and the
// policy reconciler (which carries it in a policy's first status write)
// write into status.runtime.
func runtimeOf(ctx context.Context, reader client.Reader, now time.Time, p *rules.Policy, ports []v1alpha1.LoopbackPort, selected []*podview.Pod) (*v1alpha1.RuntimeStatus, error) {
	var ro runtimeObservation
	if err := newRuntimeView(reader, now).observe(ctx, p, ports, selected, &ro); err != nil {
		return nil, err
	}
	return ro.status(), nil
}

// runtimeObservation is what the agents saw of one policy's selected pods.
type runtimeObservation struct {
	// reported is true when a node of a selected pod has a report at all;
	// without one (no agent installed) status shows no runtime section.
	reported   bool
	checked    int32
	unchecked  int32
	beyond     int32
	listeners  []v1alpha1.RuntimeListener
	clients    []v1alpha1.RuntimeClient
	staleNodes map[string]bool
}

// observe judges the running pods that p selects, adding to ro, by their
// node's report: the listeners beyond loopback on p's ports, and the
// clients of its ports (judged against ports, p's spec.ports, which say
// which containers are expected). A report speaks only of pods on its own
// node, matched by UID: an agent that lists another node's pod is not
// believed (its report is the only one it may write, see
// config/agent-policy).
func (v *runtimeView) observe(ctx context.Context, p *rules.Policy, ports []v1alpha1.LoopbackPort, selected []*podview.Pod, ro *runtimeObservation) error {
	for _, pod := range selected {
		if pod.NodeName == "" || pod.Phase != corev1.PodRunning {
			continue
		}
		n, err := v.node(ctx, pod.NodeName)
		if err != nil {
			return err
		}
		ro.reported = ro.reported || n.exists
		if !n.fresh {
			ro.unchecked++
			if ro.staleNodes == nil {
				ro.staleNodes = map[string]bool{}
			}
			ro.staleNodes[pod.NodeName] = true
			continue
		}
		pr := n.pod(pod.UID)
		if pr == nil || pr.Unchecked != "" || pr.Namespace != pod.Namespace || pr.Name != pod.Name {
			ro.unchecked++
			continue
		}
		ro.checked++
		found := false
		for _, l := range pr.Listeners {
			if _, ok := p.Protects(l.Protocol, l.Port); !ok {
				continue // another policy's port
			}
			found = true
			ro.listeners = append(ro.listeners, v1alpha1.RuntimeListener{
				Namespace: pod.Namespace, Pod: pod.Name, Node: pod.NodeName, HostNetwork: pr.HostNetwork,
				Container: l.Container, Process: l.Process, Protocol: l.Protocol, Address: l.Address, Port: l.Port,
			})
		}
		if found {
			ro.beyond++
		}
		ro.observeClients(ports, pod, pr)
	}
	return nil
}

// status renders the observation, sorted and capped; nil without reports.
func (a *runtimeObservation) status() *v1alpha1.RuntimeStatus {
	if !a.reported {
		return nil
	}
	sort.Slice(a.listeners, func(i, j int) bool { return listenerKey(a.listeners[i]) < listenerKey(a.listeners[j]) })
	st := &v1alpha1.RuntimeStatus{PodsChecked: a.checked, PodsUnchecked: a.unchecked, PodsBeyondLoopback: a.beyond}
	if len(a.listeners) > 0 {
		st.Listeners = a.listeners[:min(len(a.listeners), v1alpha1.MaxStatusViolations)]
	}
	a.setClients(st)
	for n := range a.staleNodes {
		st.StaleNodes = append(st.StaleNodes, n)
	}
	sort.Strings(st.StaleNodes)
	if len(st.StaleNodes) > v1alpha1.MaxStatusViolations {
		st.StaleNodes = st.StaleNodes[:v1alpha1.MaxStatusViolations]
	}
	return st
}

func listenerKey(l v1alpha1.RuntimeListener) string {
	return fmt.Sprintf("%s/%s/%s/%05d/%s", l.Namespace, l.Pod, l.Protocol, l.Port, l.Address)
}

// describeListener is the sentence an Event and the RuntimeVerified condition
// use for one finding.
func describeListener(l v1alpha1.RuntimeListener) string {
	addr := l.Address
	if len(addr) > 0 && addr[0] != '[' && strings.Contains(addr, ":") {
		addr = "[" + addr + "]"
	}
	s := fmt.Sprintf("pod %s/%s listens on %s:%d/%s beyond loopback", l.Namespace, l.Pod, addr, l.Port, l.Protocol)
	var who []string
	if l.Container != "" {
		who = append(who, "container "+l.Container)
	}
	if l.Process != "" {
		who = append(who, "process "+l.Process)
	}
	if l.Node != "" {
		who = append(who, "node "+l.Node)
	}
	if l.HostNetwork {
		who = append(who, "hostNetwork: on the node's addresses")
	}
	if len(who) > 0 {
		s += " (" + strings.Join(who, ", ") + ")"
	}
	loop := "127.0.0.1"
	if strings.Contains(l.Address, ":") {
		loop = "::1"
	}
	return s + "; bind it to " + loop
}

// newListeners returns the findings of cur that old did not list, so that
// each is announced once, not on every reconcile.
func newListeners(old, cur *v1alpha1.RuntimeStatus) []v1alpha1.RuntimeListener {
	if cur == nil {
		return nil
	}
	var before []v1alpha1.RuntimeListener
	if old != nil {
		before = old.Listeners
	}
	return notIn(before, cur.Listeners, listenerKey)
}

// notIn returns the items of cur whose key no item of old has, in order.
func notIn[T any](old, cur []T, key func(T) string) []T {
	seen := make(map[string]bool, len(old))
	for _, o := range old {
		seen[key(o)] = true
	}
	var out []T
	for _, c := range cur {
		if !seen[key(c)] {
			out = append(out, c)
		}
	}
	return out
}

// announceRuntime announces what a runtime view written over old adds:
// the listeners beyond loopback and the unexpected clients. Whichever
// controller writes the view announces it, once (both write under the
// optimistic lock).
func announceRuntime(rec events.EventRecorder, obj policyObject, old, cur *v1alpha1.RuntimeStatus) {
	announceListeners(rec, obj, old, cur)
	announceClients(rec, obj, old, cur)
}

// announceListeners emits a Warning Event, regarding the policy and related
// to the pod, for the findings that are new since the last status: one per
// pod, naming each address (the events API merges Events that differ only
// in their note into one series), bounded per reconcile like violations.
func announceListeners(rec events.EventRecorder, obj policyObject, old, cur *v1alpha1.RuntimeStatus) {
	fresh := newListeners(old, cur)
	for i, n := 0, 0; i < len(fresh) && n < maxEventsPerReconcile; n++ {
		j := i
		for j < len(fresh) && fresh[j].Namespace == fresh[i].Namespace && fresh[j].Pod == fresh[i].Pod {
			j++
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fresh[i].Namespace, Name: fresh[i].Pod}}
		rec.Eventf(obj, pod, corev1.EventTypeWarning, v1alpha1.ReasonListeningBeyondLoopback, "Scan", "%s", describePodListeners(fresh[i:j]))
		i = j
	}
}

// maxEventNote is below the events API's 1 kB limit on a note; a longer
// note is refused and the Event lost.
const maxEventNote = 1000

// describePodListeners describes the findings of one pod: each address,
// as many as fit in an Event's note.
func describePodListeners(ls []v1alpha1.RuntimeListener) string {
	s := describeListener(ls[0])
	for i, l := range ls[1:] {
		next := s + "; " + describeListener(l)
		if len(next) > maxEventNote-40 {
			return s + fmt.Sprintf("; and %d more (status.runtime)", len(ls)-1-i)
		}
		s = next
	}
	if len(s) > maxEventNote {
		s = s[:maxEventNote-3] + "..."
	}
	return s
}

// recordRuntimeMetrics sets the policy's count of pods listening beyond
// loopback, of stale nodes and of unexpected clients; a policy without
// reports has no series.
func recordRuntimeMetrics(k metrics.PolicyKey, st *v1alpha1.RuntimeStatus) {
	if st != nil {
		metrics.Policies.SetRuntime(k, int(st.PodsBeyondLoopback), len(st.StaleNodes), int(st.UnexpectedClientCount))
		return
	}
	metrics.Policies.ForgetRuntime(k)
}

// listeningHostNetworkPods returns a ClusterReport result for each
// hostNetwork pod that the node's fresh NodeBindReport saw listening on a
// protected port beyond loopback: the socket is on the node's addresses,
// so the finding is the node's as much as the pod's.
func (r *HostNetworkReconciler) listeningHostNetworkPods(ctx context.Context, node string) ([]openreportsv1alpha1.ReportResult, error) {
	var rep v1alpha1.NodeBindReport
	if err := r.reader.Get(ctx, client.ObjectKey{Name: node}, &rep, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get NodeBindReport %s: %w", node, err)
	}
	if !time.Now().Before(staleAt(&rep)) {
		return nil, nil
	}
	var out []openreportsv1alpha1.ReportResult
	for _, p := range rep.Status.Pods {
		if !p.HostNetwork || len(p.Listeners) == 0 {
			continue
		}
		var addrs, procs []string
		var first string
		for _, l := range p.Listeners {
			addrs = append(addrs, fmt.Sprintf("%s:%d/%s", l.Address, l.Port, l.Protocol))
			if l.Process != "" && !slices.Contains(procs, l.Process) {
				procs = append(procs, l.Process)
			}
			if first == "" {
				first = describeListener(v1alpha1.RuntimeListener{Namespace: p.Namespace, Pod: p.Name, Node: node, HostNetwork: true,
					Container: l.Container, Process: l.Process, Protocol: l.Protocol, Address: l.Address, Port: l.Port})
			}
		}
		out = append(out, openreportsv1alpha1.ReportResult{
			Source: "loopguard", Policy: "loopguard/hostnetwork", Rule: "listening-beyond-loopback",
			Category: "loopback", Result: "fail", Severity: "critical",
			Subjects:    []corev1.ObjectReference{{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name}},
			Description: first,
			Properties:  map[string]string{"node": node, "listeners": strings.Join(addrs, ","), "processes": strings.Join(procs, ",")},
		})
	}
	return out, nil
}
