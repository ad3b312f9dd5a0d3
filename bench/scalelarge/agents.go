package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// The real agent (cmd/agent) scans every minute and writes its node's
// report when the findings change, or else every 5 minutes (its
// --scan-interval and --report-refresh defaults): a quiet node costs one
// write per 5 minutes. The simulated agents do the same, spread evenly.
const (
	scanInterval  = time.Minute
	reportRefresh = 5 * time.Minute
	agentWorkers  = 8
)

// agents simulates one loopguard agent per node: a report listing the
// node's pods, all checked, none listening beyond loopback, except the
// listeners set by listen.
type agents struct {
	b        *bench
	nodeUIDs []types.UID
	mu       sync.Mutex
	listen   map[int]int64 // pod index -> port it listens on at 0.0.0.0
	writes   atomic.Int64
	ensured  []atomic.Bool // the report object exists (then only its status is written)
	now      chan int
}

// writeAll writes every node's report once (the agents starting).
func (a *agents) writeAll(ctx context.Context) {
	a.b.parallel("NodeBindReports", a.b.size.Nodes, func(n int) error { return a.write(ctx, n) })
}

// run rewrites one report every reportRefresh/Nodes, round robin, and a
// node's report at once when its findings change (a.now), on agentWorkers
// goroutines; until ctx ends.
func (a *agents) run(ctx context.Context) {
	work := make(chan int, agentWorkers)
	for w := 0; w < agentWorkers; w++ {
		go func() {
			for n := range work {
				if err := a.write(ctx, n); err != nil && ctx.Err() == nil {
					a.b.logf("agent %s: %v", NodeName(n), err)
				}
			}
		}()
	}
	tick := time.NewTicker(reportRefresh / time.Duration(a.b.size.Nodes))
	defer tick.Stop()
	defer close(work)
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-a.now:
			work <- n
		case <-tick.C:
			work <- next
			next = (next + 1) % a.b.size.Nodes
		}
	}
}

// setListener makes pod i's agent report a listener on 0.0.0.0:port (0:
// none) and write at once, as a real agent does when findings change.
func (a *agents) setListener(i int, port int64) {
	a.mu.Lock()
	if port == 0 {
		delete(a.listen, i)
	} else {
		a.listen[i] = port
	}
	a.mu.Unlock()
	a.now <- i % a.b.size.Nodes
}

func (a *agents) write(ctx context.Context, n int) error {
	name := NodeName(n)
	var pods []any
	beyond := int64(0)
	a.mu.Lock()
	for i := n; i < a.b.size.Pods; i += a.b.size.Nodes {
		p := a.b.size.Pod(i)
		pr := map[string]any{"namespace": p.NS, "name": p.Name, "uid": string(a.b.podUIDs[i])}
		if p.HostNetwork {
			pr["hostNetwork"] = true
		}
		if port, ok := a.listen[i]; ok {
			pr["listeners"] = []any{map[string]any{"protocol": "TCP", "address": "0.0.0.0", "port": port, "container": "app", "process": "app"}}
			beyond++
		}
		pods = append(pods, pr)
	}
	a.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "loopguard.io/v1alpha1", "kind": "NodeBindReport",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"app.kubernetes.io/name": "loopguard", "app.kubernetes.io/component": "agent"},
			"ownerReferences": []any{map[string]any{"apiVersion": "v1", "kind": "Node", "name": name, "uid": string(a.nodeUIDs[n])}}},
	}}
	opts := metav1.ApplyOptions{FieldManager: "loopguard-agent", Force: true}
	if !a.ensured[n].Load() {
		if _, err := a.b.dyn.Resource(nbrGVR).Apply(ctx, name, u, opts); err != nil {
			return err
		}
		a.ensured[n].Store(true)
	}
	u.Object["status"] = map[string]any{
		"scannedAt": now, "scanDuration": "3ms", "scanInterval": scanInterval.String(), "refreshInterval": reportRefresh.String(),
		"podsChecked": int64(len(pods)), "podsBeyondLoopback": beyond, "pods": pods,
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "ScanSucceeded",
			"message": "checked pods protected by a policy", "lastTransitionTime": now}},
	}
	delete(u.Object["metadata"].(map[string]any), "ownerReferences")
	delete(u.Object["metadata"].(map[string]any), "labels")
	if _, err := a.b.dyn.Resource(nbrGVR).ApplyStatus(ctx, name, u, opts); err != nil {
		return err
	}
	a.writes.Add(1)
	return nil
}
