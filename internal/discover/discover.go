// Package discover turns what the node agents observed listening
// (NodeBindReport status.discovery, the agent's --discovery) into proposed
// LoopbackServices: the loopback-only listeners of each workload become one
// policy per workload and namespace, and listeners on a wildcard that no
// Service or containerPort declares are listed as candidates for binding to
// loopback. Pure: objects in, proposals out, no client (internal/cli reads
// the cluster and renders).
package discover

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Input is what the proposals are made from, in the namespaces of interest.
type Input struct {
	// Reports are the nodes' NodeBindReports.
	Reports []v1alpha1.NodeBindReport
	// Pods are the live pods: a reported pod that is gone (another UID
	// under its name, or none) is ignored.
	Pods []corev1.Pod
	// Owners are the objects pods may be owned by, directly or through
	// another: ReplicaSets, Deployments, StatefulSets, DaemonSets, Jobs,
	// CronJobs.
	Owners []client.Object
	// Services may declare a port (its targetPort).
	Services []corev1.Service
	// Policies already protect ports: those are not proposed again.
	Policies []v1alpha1.LoopbackService
}

// Workload is what a pod belongs to: the top of its controller chain
// (Deployment, StatefulSet, DaemonSet, CronJob, or a Job, ReplicaSet or
// the Pod itself when nothing owns it).
type Workload struct {
	Kind, Namespace, Name string
}

func (w Workload) String() string { return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name) }

// Port is one proposed port or range (From..To, inclusive), with the
// containers and processes seen on it ("container/process").
type Port struct {
	Protocol  corev1.Protocol
	From, To  int32
	Processes []string
}

// Proposal is one proposed LoopbackService.
type Proposal struct {
	Workload Workload
	// Name is the proposed policy's name.
	Name string
	// Selector is the workload's template labels without those the
	// controllers add per revision (pod-template-hash, ...); empty when
	// the pods carry no label to select them by.
	Selector map[string]string
	Ports    []Port
	// Pods are the names of the pods the listeners were seen in.
	Pods []string
	// Others are pods the selector also selects that are not the
	// workload's (the proposal would cover them too).
	Others []string
}

// Wildcard is a port that listens on every address of a pod while no
// Service and no containerPort declares it: a candidate for binding to
// loopback, or an undeclared way in.
type Wildcard struct {
	Workload  Workload
	Protocol  corev1.Protocol
	Address   string
	Port      int32
	Processes []string
	Pods      []string
}

// Result is what Propose found.
type Result struct {
	Proposals []Proposal
	Wildcards []Wildcard
	// NoDiscovery are the nodes whose agent runs without discovery.
	NoDiscovery []string
	// Truncated are the nodes whose discovery was cut at its bounds.
	Truncated []string
}

// volatileLabels are added by controllers to a pod (not to its template)
// or differ between revisions: never part of a proposed selector.
var volatileLabels = []string{
	"pod-template-hash", "controller-revision-hash", "pod-template-generation",
	"statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index",
	"controller-uid", "job-name", "batch.kubernetes.io/controller-uid",
	"batch.kubernetes.io/job-name", "batch.kubernetes.io/job-completion-index",
}

type portKey struct {
	proto corev1.Protocol
	port  int32
}

// group is what was seen of one workload.
type group struct {
	wl        Workload
	selector  map[string]string
	pods      []*corev1.Pod
	classes   map[portKey]map[v1alpha1.AddressClass]bool
	processes map[portKey][]string
	wild      map[portKey]*Wildcard
}

// Propose groups the reports' loopback-only listeners by workload and
// proposes a policy for each, and lists the undeclared wildcards.
func Propose(in Input) Result {
	var res Result
	live := map[types.UID]*corev1.Pod{}
	for i := range in.Pods {
		if in.Pods[i].DeletionTimestamp == nil {
			live[in.Pods[i].UID] = &in.Pods[i]
		}
	}
	owners := indexOwners(in.Owners)
	groups := map[Workload]*group{}
	for _, r := range in.Reports {
		d := r.Status.Discovery
		if d == nil {
			res.NoDiscovery = append(res.NoDiscovery, r.Name)
			continue
		}
		if d.Truncated {
			res.Truncated = append(res.Truncated, r.Name)
		}
		for _, dp := range d.Pods {
			pod, ok := live[dp.UID]
			if !ok || pod.Spec.HostNetwork {
				// Gone, or in the node's namespace: its loopback is the
				// node's, not a pod's to protect.
				continue
			}
			wl, tmpl := resolve(pod, owners)
			g := groups[wl]
			if g == nil {
				g = &group{wl: wl, selector: selectorFrom(tmpl), classes: map[portKey]map[v1alpha1.AddressClass]bool{},
					processes: map[portKey][]string{}, wild: map[portKey]*Wildcard{}}
				groups[wl] = g
			}
			if !slices.Contains(g.pods, pod) {
				g.pods = append(g.pods, pod)
			}
			for _, l := range dp.Listeners {
				k := portKey{l.Protocol, l.Port}
				if protected(in.Policies, pod, k) {
					continue
				}
				if g.classes[k] == nil {
					g.classes[k] = map[v1alpha1.AddressClass]bool{}
				}
				g.classes[k][l.AddressClass] = true
				proc := processName(l)
				if !slices.Contains(g.processes[k], proc) {
					g.processes[k] = append(g.processes[k], proc)
				}
				if l.AddressClass == v1alpha1.AddressClassWildcard && !declared(pod, in.Services, k) {
					w := g.wild[k]
					if w == nil {
						w = &Wildcard{Workload: wl, Protocol: l.Protocol, Address: l.Address, Port: l.Port}
						g.wild[k] = w
					}
					if !slices.Contains(w.Processes, proc) {
						w.Processes = append(w.Processes, proc)
					}
					if !slices.Contains(w.Pods, pod.Name) {
						w.Pods = append(w.Pods, pod.Name)
					}
				}
			}
		}
	}
	names := map[string]bool{}
	for _, wl := range slices.SortedFunc(maps.Keys(groups), compareWorkloads) {
		g := groups[wl]
		for _, k := range slices.SortedFunc(maps.Keys(g.wild), comparePortKeys) {
			w := g.wild[k]
			slices.Sort(w.Processes)
			slices.Sort(w.Pods)
			res.Wildcards = append(res.Wildcards, *w)
		}
		var loop []portKey
		for k, classes := range g.classes {
			if len(classes) == 1 && classes[v1alpha1.AddressClassLoopback] {
				loop = append(loop, k)
			}
		}
		if len(loop) == 0 {
			continue
		}
		p := Proposal{Workload: wl, Selector: g.selector, Ports: mergePorts(loop, g.processes)}
		for _, pod := range g.pods {
			p.Pods = append(p.Pods, pod.Name)
		}
		slices.Sort(p.Pods)
		p.Others = others(g, in.Pods, owners)
		p.Name = policyName(wl, names)
		res.Proposals = append(res.Proposals, p)
	}
	slices.Sort(res.NoDiscovery)
	slices.Sort(res.Truncated)
	return res
}

func compareWorkloads(a, b Workload) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
}

func comparePortKeys(a, b portKey) int {
	return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port))
}

func processName(l v1alpha1.DiscoveredListener) string {
	c, p := l.Container, l.Process
	if c == "" {
		c = "?"
	}
	if p == "" {
		p = "?"
	}
	return c + "/" + p
}

// mergePorts sorts the ports by protocol and number and merges contiguous
// ones into ranges (LoopbackPort's port..endPort).
func mergePorts(keys []portKey, processes map[portKey][]string) []Port {
	slices.SortFunc(keys, comparePortKeys)
	var out []Port
	for _, k := range keys {
		if n := len(out); n > 0 && out[n-1].Protocol == k.proto && out[n-1].To+1 == k.port {
			out[n-1].To = k.port
			for _, p := range processes[k] {
				if !slices.Contains(out[n-1].Processes, p) {
					out[n-1].Processes = append(out[n-1].Processes, p)
				}
			}
			continue
		}
		out = append(out, Port{Protocol: k.proto, From: k.port, To: k.port, Processes: slices.Clone(processes[k])})
	}
	for i := range out {
		slices.Sort(out[i].Processes)
	}
	return out
}

// policyName is "<workload>-loopback", with the kind when another
// proposal of the namespace has that name, and a number after that: every
// name it returns is recorded, so a Deployment named like a StatefulSet's
// kind-qualified name does not take it.
func policyName(wl Workload, used map[string]bool) string {
	take := func(name string) bool {
		key := wl.Namespace + "/" + name
		if used[key] {
			return false
		}
		used[key] = true
		return true
	}
	if name := truncateName(wl.Name, "-loopback"); take(name) {
		return name
	}
	base := strings.ToLower(wl.Kind) + "-" + wl.Name
	if name := truncateName(base, "-loopback"); take(name) {
		return name
	}
	for i := 2; ; i++ {
		if name := truncateName(base, fmt.Sprintf("-%d-loopback", i)); take(name) {
			return name
		}
	}
}

func truncateName(base, suffix string) string {
	if max := 253 - len(suffix); len(base) > max {
		base = strings.TrimRight(base[:max], "-.")
	}
	return base + suffix
}

// selectorFrom is the template's labels without the volatile ones.
func selectorFrom(tmpl map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range tmpl {
		if !slices.Contains(volatileLabels, k) {
			out[k] = v
		}
	}
	return out
}

// others are the pods of the namespace that the selector selects and that
// belong to another workload.
func others(g *group, pods []corev1.Pod, owners ownerIndex) []string {
	if len(g.selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(g.selector)
	var out []string
	for i := range pods {
		p := &pods[i]
		if p.Namespace != g.wl.Namespace || p.DeletionTimestamp != nil || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		if wl, _ := resolve(p, owners); wl != g.wl {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}
