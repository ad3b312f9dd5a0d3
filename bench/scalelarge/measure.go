package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/loopguard/loopguard/bench/internal/proc"
)

const managedBy = "app.kubernetes.io/managed-by=loopguard"

// waitFor polls cond every 200ms and returns how long it took.
func waitFor(what string, timeout time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fail(fmt.Errorf("%s: not seen after %s", what, timeout))
	return 0
}

// fingerprint maps every object the manager writes (policies, managed
// NetworkPolicies) to its resourceVersion and the fields the manager
// writes (a policy's status, a NetworkPolicy's spec), so that a change in
// the quiet window can say what changed.
func (b *bench) fingerprint(ctx context.Context) map[string]written {
	fp := map[string]written{}
	lbs, _ := b.dyn.Resource(lbsGVR).Namespace("").List(ctx, metav1.ListOptions{})
	clbs, _ := b.dyn.Resource(clbsGVR).List(ctx, metav1.ListOptions{})
	for _, l := range []*unstructured.UnstructuredList{lbs, clbs} {
		if l == nil {
			continue
		}
		for _, it := range l.Items {
			st, _, _ := unstructured.NestedMap(it.Object, "status")
			fp[it.GetKind()+":"+it.GetNamespace()+"/"+it.GetName()] = written{rv: it.GetResourceVersion(), fields: statusFields(st)}
		}
	}
	nps, _ := b.cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{LabelSelector: managedBy})
	if nps != nil {
		for _, np := range nps.Items {
			fp["np:"+np.Namespace+"/"+np.Name] = written{rv: np.ResourceVersion, fields: map[string]string{"spec": fmt.Sprint(np.Spec)}}
		}
	}
	return fp
}

// written is an object's resourceVersion and its written fields, each
// rendered as a string.
type written struct {
	rv     string
	fields map[string]string
}

// statusFields renders a policy's status by field, each condition a field
// of its own (conditions.<type>, its lastTransitionTime included).
func statusFields(st map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range st {
		if k != "conditions" {
			out["status."+k] = fmt.Sprint(v)
			continue
		}
		conds, _ := v.([]any)
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok {
				out[fmt.Sprintf("status.conditions[%v]", m["type"])] = fmt.Sprint(m)
			}
		}
	}
	return out
}

// changed lists the objects whose resourceVersion differs, appeared or
// went between two fingerprints, and counts, over the changed objects,
// how many times each field differs.
func changed(a, b map[string]written) ([]string, map[string]int) {
	var out []string
	fields := map[string]int{}
	for k, v := range b {
		old, ok := a[k]
		if ok && old.rv == v.rv {
			continue
		}
		out = append(out, k)
		for f, s := range v.fields {
			if old.fields[f] != s {
				fields[f]++
			}
		}
		for f := range old.fields {
			if _, ok := v.fields[f]; !ok {
				fields[f]++
			}
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k+" (gone)")
		}
	}
	slices.Sort(out)
	return out, fields
}

// writeRequests sums the API server's apiserver_request_total for write
// verbs on the resources only the manager writes during the quiet window
// (policies and their status, NetworkPolicies). The metric has no user or
// user-agent label, so this counts every client's writes to them: in the
// quiet window the bench writes none.
func (b *bench) writeRequests(ctx context.Context) float64 {
	by, err := b.writesBy(ctx)
	if err != nil {
		return -1
	}
	sum := 0.0
	for k, v := range by {
		if !strings.Contains(k, "validatingwebhookconfigurations") {
			sum += v
		}
	}
	return sum
}

// writesBy reads the API server's apiserver_request_total for write verbs
// on resources, by "VERB resource[/subresource] code"; by default on what
// only the manager writes once the bench's policies exist (policies and
// their status, NetworkPolicies, the webhook configuration).
func (b *bench) writesBy(ctx context.Context, resources ...string) (map[string]float64, error) {
	if len(resources) == 0 {
		resources = writeResources
	}
	raw, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseWrites(string(raw), resources), nil
}

var writeResources = []string{"loopbackservices", "clusterloopbackservices", "networkpolicies", "validatingwebhookconfigurations"}

// parseWrites sums apiserver_request_total samples of write verbs on
// resources by verb, resource, subresource and code.
func parseWrites(metrics string, resources []string) map[string]float64 {
	return parseRequests(metrics, func(verb, res string) bool {
		return slices.Contains(resources, res) && slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE", "APPLY"}, verb)
	})
}

// requestsBy reads every request but watches from apiserver_request_total,
// by "VERB resource[/subresource] code": what the API server served, reads
// included.
func (b *bench) requestsBy(ctx context.Context) (map[string]float64, error) {
	raw, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseRequests(string(raw), func(verb, _ string) bool { return verb != "WATCH" && verb != "CONNECT" }), nil
}

// reconcilesBy reads controller_runtime_reconcile_total from the
// manager's metrics at url, by "controller result".
func reconcilesBy(ctx context.Context, url string) (map[string]float64, error) {
	if url == "" {
		return nil, fmt.Errorf("no manager metrics URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseReconciles(string(raw)), nil
}

// parseReconciles sums controller_runtime_reconcile_total samples by
// controller and result.
func parseReconciles(metrics string) map[string]float64 {
	return sumSamples(metrics, "controller_runtime_reconcile_total", func(l string) (string, bool) {
		return metricLabel(l, "controller") + " " + metricLabel(l, "result"), true
	})
}

// metricLabel is the value of label name in a sample line ("" if none).
func metricLabel(l, name string) string {
	i := strings.Index(l, name+`="`)
	if i < 0 {
		return ""
	}
	rest := l[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

// parseRequests sums apiserver_request_total samples that keep says to,
// by verb, resource, subresource and code.
func parseRequests(metrics string, keep func(verb, resource string) bool) map[string]float64 {
	return sumSamples(metrics, "apiserver_request_total", func(l string) (string, bool) {
		verb, res := metricLabel(l, "verb"), metricLabel(l, "resource")
		if !keep(verb, res) {
			return "", false
		}
		if sub := metricLabel(l, "subresource"); sub != "" {
			res += "/" + sub
		}
		return verb + " " + res + " " + metricLabel(l, "code"), true
	})
}

// sumSamples sums the samples of metric in Prometheus text exposition by
// the key key gives each sample line (false: left out).
func sumSamples(metrics, metric string, key func(line string) (string, bool)) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(metrics))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, metric+"{") {
			continue
		}
		k, ok := key(l)
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(l[strings.LastIndex(l, " ")+1:], 64); err == nil {
			out[k] += f
		}
	}
	return out
}

// writesSince renders the writes of by since before, largest first.
func writesSince(before, by map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range by {
		if d := v - before[k]; d > 0 {
			l = append(l, kv{k, d})
		}
	}
	slices.SortFunc(l, func(a, b kv) int {
		if a.v != b.v {
			return int(b.v - a.v)
		}
		return strings.Compare(a.k, b.k)
	})
	parts := make([]string, 0, len(l))
	for _, e := range l {
		parts = append(parts, fmt.Sprintf("%s: %.0f", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

// rss reads a process's RSS and peak RSS (KiB) from its PID file.
func rss(pidFile string) (now, peak int64) {
	pid := proc.ReadPID(pidFile)
	if pid == 0 {
		return -1, -1
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, l := range strings.Split(string(st), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			now = v
		case "VmHWM:":
			peak = v
		}
	}
	return now, peak
}

// liveHeap reads the manager's live Go heap (KiB) from its profiler at
// addr (--pprof-bind-address), forcing a collection first (gc=1), so that
// what the cache holds is told from what the collector has not yet
// returned; -1 when addr is empty or unreachable.
func liveHeap(ctx context.Context, addr string) int64 {
	if addr == "" {
		return -1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n / 1024
		}
	}
	return -1
}

func mb(kib int64) string { return fmt.Sprintf("%.1f MB", float64(kib)/1024) }

// enforced: the policy's Enforced condition is True for its generation.
func enforced(p *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Enforced" {
			og, _ := m["observedGeneration"].(int64)
			return m["status"] == "True" && og == p.GetGeneration()
		}
	}
	return false
}

// logCPU logs the CPU time each process used since the first policy's
// creation: what the convergence cost, whatever the machine's share.
func (b *bench) logCPU(until string) {
	wall := time.Since(b.t0)
	b.logf("CPU from the first policy's creation %s (%s): %s", until, wall.Round(time.Second), b.cpu.since(b.cpu0, wall.Seconds()))
}
