package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// NodeBindReportControllerName names the controller in logs and metrics.
const NodeBindReportControllerName = "nodebindreport"

// runtimeEvents carries "these pods' runtime findings changed" from the
// NodeBindReport controller to the reconcilers that show them: the runtime
// controller of each policy kind, and the hostNetwork report. Each event
// is a NodeBindReport holding only the changed pods (old and new).
type runtimeEvents struct {
	lbs, clbs, hostNetwork chan event.GenericEvent
}

func newRuntimeEvents() *runtimeEvents {
	return &runtimeEvents{
		lbs: make(chan event.GenericEvent, 64), clbs: make(chan event.GenericEvent, 64),
		hostNetwork: make(chan event.GenericEvent, 64),
	}
}

// NodeBindReportReconciler turns NodeBindReport writes into reconciles of
// the policies' runtime views, but only for what changed. Agents rewrite
// their report every scan (scannedAt moves); a runtime view that changes
// brings a policy reconcile (a full audit, for Compliant), so the pods
// whose findings did not change, and the reports that merely got newer,
// cause none. It also notices a report going stale, which no write
// announces: it asks to be called again when the report's scans would be
// overdue.
type NodeBindReportReconciler struct {
	reader client.Reader
	events *runtimeEvents
	now    func() time.Time

	mu sync.Mutex
	// last is, per node, the digest of each pod's entry as the policies saw
	// it, sorted by UID: every pod of a fresh report; none of a stale or
	// missing one. A sorted slice, not a map: 88 bytes a pod, where a map
	// per node took about 200 (31 MB of live heap at 150,000 pods).
	last map[string][]podDigest
}

type podDigest struct {
	uid             types.UID
	namespace, name string
	hostNetwork     bool
	digest          [sha256.Size]byte
}

// podDigests digests the entries of a report, sorted by UID; a UID listed
// twice counts as its last entry.
func podDigests(pods []v1alpha1.PodBindReport) []podDigest {
	out := make([]podDigest, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		out = append(out, podDigest{uid: p.UID, namespace: p.Namespace, name: p.Name, hostNetwork: p.HostNetwork, digest: digest(p)})
	}
	slices.SortStableFunc(out, func(a, b podDigest) int { return strings.Compare(string(a.uid), string(b.uid)) })
	// Keep the last of each run of one UID.
	kept := out[:0]
	for i, d := range out {
		if i+1 < len(out) && out[i+1].uid == d.uid {
			continue
		}
		kept = append(kept, d)
	}
	return slices.Clip(kept)
}

// +kubebuilder:rbac:groups=loopguard.io,resources=nodebindreports,verbs=get;list;watch

// Reconcile implements reconcile.Reconciler for one node's report.
func (r *NodeBindReportReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rep v1alpha1.NodeBindReport
	err := r.reader.Get(ctx, req.NamespacedName, &rep, client.UnsafeDisableDeepCopy)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to get NodeBindReport %s: %w", req.Name, err)
	}
	now := r.now()
	var cur []podDigest
	var requeue time.Duration
	if err == nil {
		if stale := staleAt(&rep); now.Before(stale) {
			cur = podDigests(rep.Status.Pods)
			requeue = stale.Sub(now) + time.Second
		}
	}

	r.mu.Lock()
	prev := r.last[req.Name]
	if apierrors.IsNotFound(err) {
		delete(r.last, req.Name)
	} else {
		r.last[req.Name] = cur
	}
	r.mu.Unlock()

	// A report going stale changes every pod it listed (now unchecked).
	// Selected pods a report does not list at all (the agent has not seen
	// them yet) are counted at the policies' periodic audit.
	if changed := changedPods(prev, cur); len(changed) > 0 {
		ctrl.LoggerFrom(ctx).V(1).Info("runtime findings changed", "node", req.Name, "pods", len(changed))
		r.send(ctx, req.Name, changed)
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// digest hashes what the policies read of a pod's entry (not PIDs or
// container IDs). Every field is length-prefixed: a process names itself
// (15 bytes of /proc/<pid>/comm), and in a joined text a loopback listener
// named like a second listener would digest alike with that listener on
// [::] and hide it until the periodic audit. A hash, not the text, keeps
// 32 bytes a pod in memory whatever the entry holds.
func digest(p *v1alpha1.PodBindReport) [sha256.Size]byte {
	h := sha256.New()
	var buf [8]byte
	num := func(v int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	str := func(s string) {
		num(int64(len(s)))
		io.WriteString(h, s)
	}
	flag := func(b bool) {
		if b {
			num(1)
		} else {
			num(0)
		}
	}
	str(p.Namespace)
	str(p.Name)
	flag(p.HostNetwork)
	str(p.Unchecked)
	num(int64(len(p.Listeners)))
	for _, l := range p.Listeners {
		str(string(l.Protocol))
		num(int64(l.Port))
		str(l.Address)
		str(l.Container)
		str(l.Process)
	}
	num(int64(len(p.Clients)))
	for _, c := range p.Clients {
		num(int64(c.Port))
		flag(c.Outside)
		str(c.Container)
		str(c.Process)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// changedPods returns the pods whose entry differs between two views
// (each sorted by UID, as podDigests returns them), sorted by UID: added,
// removed, or changed.
func changedPods(prev, cur []podDigest) []v1alpha1.PodBindReport {
	var out []v1alpha1.PodBindReport
	add := func(d podDigest) {
		out = append(out, v1alpha1.PodBindReport{Namespace: d.namespace, Name: d.name, UID: d.uid, HostNetwork: d.hostNetwork})
	}
	i, j := 0, 0
	for i < len(prev) && j < len(cur) {
		switch c := strings.Compare(string(prev[i].uid), string(cur[j].uid)); {
		case c < 0:
			add(prev[i])
			i++
		case c > 0:
			add(cur[j])
			j++
		default:
			if prev[i] != cur[j] {
				add(cur[j])
			}
			i, j = i+1, j+1
		}
	}
	for ; i < len(prev); i++ {
		add(prev[i])
	}
	for ; j < len(cur); j++ {
		add(cur[j])
	}
	return out
}

func (r *NodeBindReportReconciler) send(ctx context.Context, node string, pods []v1alpha1.PodBindReport) {
	ev := event.GenericEvent{Object: &v1alpha1.NodeBindReport{
		ObjectMeta: metav1.ObjectMeta{Name: node},
		Status:     v1alpha1.NodeBindReportStatus{Pods: pods},
	}}
	for _, ch := range []chan event.GenericEvent{r.events.lbs, r.events.clbs, r.events.hostNetwork} {
		select {
		case ch <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// policiesOfReport maps a runtime event to the policies of one kind that
// select the changed pods, through the webhook's policy index and the pod
// cache: never a list of every policy.
func policiesOfReport(reader client.Reader, index *policyindex.Index, kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		rep, ok := o.(*v1alpha1.NodeBindReport)
		if !ok || index == nil {
			return nil
		}
		pods := make([]*podview.Pod, 0, len(rep.Status.Pods))
		for _, pr := range rep.Status.Pods {
			pod, err := clusterindex.Pod(ctx, reader, pr.Namespace, pr.Name)
			if apierrors.IsNotFound(err) {
				continue // a deleted pod: the pod watch reconciles its policies
			} else if err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "failed to read a pod of a runtime event", "pod", client.ObjectKey{Namespace: pr.Namespace, Name: pr.Name})
				continue
			}
			pods = append(pods, pod)
		}
		return policiesSelectingPods(index, kind, pods)
	}
}

// hostNetworkNodeOfReport maps a runtime event that changed a hostNetwork
// pod to its node's hostNetwork report.
func hostNetworkNodeOfReport(_ context.Context, o client.Object) []reconcile.Request {
	rep, ok := o.(*v1alpha1.NodeBindReport)
	if !ok {
		return nil
	}
	for _, p := range rep.Status.Pods {
		if p.HostNetwork {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: rep.Name}}}
		}
	}
	return nil
}

// runtimeSource is the channel source of one consumer of runtime events.
func runtimeSource(ch chan event.GenericEvent, fn handler.MapFunc) source.Source {
	return source.Channel(ch, handler.EnqueueRequestsFromMapFunc(fn))
}

// setupNodeBindReports registers the NodeBindReport controller.
func setupNodeBindReports(mgr ctrl.Manager, events *runtimeEvents) error {
	r := &NodeBindReportReconciler{
		reader: mgr.GetCache(), events: events, now: time.Now,
		last: map[string][]podDigest{},
	}
	return ctrl.NewControllerManagedBy(mgr).Named(NodeBindReportControllerName).
		For(&v1alpha1.NodeBindReport{}).
		Complete(r)
}
