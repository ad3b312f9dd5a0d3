package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/bindscan"
)

// Condition of the agent in its report.
const (
	conditionReady      = "Ready"
	reasonScanSucceeded = "ScanSucceeded"
	reasonScanFailed    = "ScanFailed"
)

// scanOutcome is one scan of the node.
type scanOutcome struct {
	targets  []podTarget
	results  []bindscan.Result
	err      error // nothing could be scanned
	start    time.Time
	duration time.Duration
}

// buildStatus turns a scan into the report's status; interval and refresh
// tell readers when it is stale. prev supplies the conditions' transition
// times.
func buildStatus(o scanOutcome, interval, refresh time.Duration, prev *v1alpha1.NodeBindReportStatus) v1alpha1.NodeBindReportStatus {
	st := v1alpha1.NodeBindReportStatus{
		ScannedAt:       &metav1.Time{Time: o.start.Add(o.duration).UTC().Truncate(time.Second)},
		ScanDuration:    &metav1.Duration{Duration: o.duration.Round(time.Microsecond)},
		ScanInterval:    &metav1.Duration{Duration: interval},
		RefreshInterval: &metav1.Duration{Duration: refresh},
	}
	if prev != nil {
		st.Conditions = slices.Clone(prev.Conditions)
	}
	ready := metav1.Condition{Type: conditionReady, Status: metav1.ConditionTrue, Reason: reasonScanSucceeded,
		Message: fmt.Sprintf("checked %d pods protected by a policy", protectedCount(o.targets))}
	if o.err != nil {
		ready.Status, ready.Reason = metav1.ConditionFalse, reasonScanFailed
		ready.Message = truncate(o.err.Error(), 1024)
		st.Errors = []string{truncate(o.err.Error(), 1024)}
	}
	meta.SetStatusCondition(&st.Conditions, ready)

	for i, t := range o.targets {
		if i >= len(o.results) {
			break
		}
		if !t.protected {
			continue
		}
		pr := podReport(t, o.results[i])
		if pr.Unchecked == "" {
			st.PodsChecked++
		}
		if len(pr.Listeners) > 0 {
			st.PodsBeyondLoopback++
		}
		st.Pods = append(st.Pods, pr)
	}
	// Findings first when the list must be cut, then by namespace/name.
	slices.SortFunc(st.Pods, func(a, b v1alpha1.PodBindReport) int {
		return cmp.Or(cmp.Compare(boolRank(len(b.Listeners) > 0), boolRank(len(a.Listeners) > 0)),
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	if len(st.Pods) > v1alpha1.MaxReportPods {
		st.Pods, st.Truncated = st.Pods[:v1alpha1.MaxReportPods], true
	}
	slices.SortFunc(st.Pods, func(a, b v1alpha1.PodBindReport) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return st
}

func protectedCount(targets []podTarget) int {
	n := 0
	for _, t := range targets {
		if t.protected {
			n++
		}
	}
	return n
}

// bool compare helper: cmp.Compare has no bool instance.
func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// podReport is one pod's entry.
func podReport(t podTarget, r bindscan.Result) v1alpha1.PodBindReport {
	pr := v1alpha1.PodBindReport{
		Namespace: t.pod.Namespace, Name: t.pod.Name, UID: t.pod.UID,
		HostNetwork: t.pod.Spec.HostNetwork, Unchecked: truncate(r.Unchecked, 1024),
	}
	scheme := containerRuntime(t.pod)
	for _, l := range r.Listeners {
		if len(pr.Listeners) == v1alpha1.MaxReportListeners {
			break
		}
		bl := v1alpha1.BindListener{
			Protocol: corev1.Protocol(l.Protocol), Address: l.Addr.String(), Port: int32(l.Port),
			PID: int64(l.PID), Process: truncate(l.Process, 256),
		}
		if l.ContainerID != "" {
			bl.Container = t.containers[l.ContainerID]
			bl.ContainerID = l.ContainerID
			if scheme != "" {
				bl.ContainerID = scheme + "://" + l.ContainerID
			}
		}
		pr.Listeners = append(pr.Listeners, bl)
	}
	pr.Clients = clientReports(t, r.Clients)
	return pr
}

// clientReports are the distinct clients (port, container or outside,
// process): several connections of one client are one entry, and PIDs are
// left out, so the report changes when a client comes or goes, not with
// each connection.
func clientReports(t podTarget, clients []bindscan.Client) []v1alpha1.BindClient {
	var out []v1alpha1.BindClient
	for _, c := range clients {
		bc := v1alpha1.BindClient{Port: int32(c.Port), Outside: c.Outside, Process: truncate(c.Process, 256)}
		if !c.Outside {
			bc.Container = t.containers[c.ContainerID]
		}
		if slices.Contains(out, bc) {
			continue
		}
		if len(out) == v1alpha1.MaxReportClients {
			break
		}
		out = append(out, bc)
	}
	slices.SortFunc(out, func(a, b v1alpha1.BindClient) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(boolRank(a.Outside), boolRank(b.Outside)),
			cmp.Compare(a.Container, b.Container), cmp.Compare(a.Process, b.Process))
	})
	return out
}

// sameFindings reports whether two statuses say the same apart from when
// the scan ran and how long it took: the agent writes only when this is
// false, or to refresh scannedAt.
func sameFindings(a, b *v1alpha1.NodeBindReportStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.ScannedAt, y.ScannedAt = nil, nil
	x.ScanDuration, y.ScanDuration = nil, nil
	return equality.Semantic.DeepEqual(x, y)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
