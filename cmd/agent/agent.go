package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/bindscan"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// startDelay is how long a scan waits after a protected pod starts: its
// process binds after the container starts. Later binds are found by the
// next periodic scan.
const startDelay = 2 * time.Second

// agent scans its node on an interval and when a protected pod starts, and
// writes the node's report. It is a manager.Runnable.
type agent struct {
	log      logr.Logger
	pods     client.Reader // the cache: this node's pods only
	index    *policyindex.Index
	scanner  *bindscan.Scanner
	writer   *reportWriter
	interval time.Duration
	// discover: also record every pod's listeners on unprotected ports.
	discover bool

	trigger  chan struct{}
	scanned  atomic.Bool // a scan succeeded: ready
	previous *v1alpha1.NodeBindReportStatus
}

func newAgent(log logr.Logger, pods client.Reader, index *policyindex.Index, scanner *bindscan.Scanner, writer *reportWriter, interval time.Duration, discover bool) *agent {
	return &agent{log: log, pods: pods, index: index, scanner: scanner, writer: writer, interval: interval, discover: discover, trigger: make(chan struct{}, 1)}
}

// NeedLeaderElection: every node's agent runs.
func (a *agent) NeedLeaderElection() bool { return false }

// Start runs until ctx ends (graceful shutdown: the scan in progress, if
// any, finishes or is cut by ctx; nothing is left half-written, since
// each write is one apply).
func (a *agent) Start(ctx context.Context) error {
	if err := a.waitForIndex(ctx); err != nil {
		return nil // shutting down before the caches synced
	}
	prev, err := a.writer.previous(ctx)
	if err != nil {
		a.log.Error(err, "failed to read the previous report; conditions restart")
	}
	a.previous = prev
	ticker := time.NewTicker(a.interval)
	defer ticker.Stop()
	a.scanAndReport(ctx, "start")
	for {
		select {
		case <-ctx.Done():
			a.log.Info("stopping")
			return nil
		case <-ticker.C:
			a.scanAndReport(ctx, "interval")
		case <-a.trigger:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(startDelay):
			}
			a.scanAndReport(ctx, "pod started")
		}
	}
}

func (a *agent) waitForIndex(ctx context.Context) error {
	for !a.index.Synced() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// scanAndReport is one round: list the node's pods, ask the rules which
// ports protect each, scan, and write the report if it changed.
func (a *agent) scanAndReport(ctx context.Context, why string) {
	var pods corev1.PodList
	if err := a.pods.List(ctx, &pods); err != nil {
		a.log.Error(err, "failed to list the node's pods")
		return
	}
	targets := selectTargets(pods.Items, a.index.Env, a.discover)
	scanTargets := make([]bindscan.Target, len(targets))
	for i, t := range targets {
		scanTargets[i] = t.target
	}
	start := time.Now()
	results, err := a.scanner.Scan(scanTargets)
	o := scanOutcome{targets: targets, results: results, err: err, start: start, duration: time.Since(start)}
	if err != nil {
		err = fmt.Errorf("failed to scan the node: %w", err)
		o.err = err
		a.log.Error(err, "scan failed", "trigger", why)
	}
	status := buildStatus(o, a.interval, a.writer.refresh, a.previous)
	if a.discover {
		status.Discovery = buildDiscovery(o)
	}
	observeScan(o, status)
	wrote, werr := a.writer.write(ctx, status, time.Now())
	if werr != nil {
		if !errors.Is(werr, context.Canceled) {
			a.log.Error(werr, "failed to write the node's report")
		}
		return
	}
	a.previous = &status
	if err == nil {
		a.scanned.Store(true)
	}
	log := a.log.WithValues("trigger", why, "pods", len(targets), "podsDiscovered", discoveredPods(status), "podsChecked", status.PodsChecked,
		"podsBeyondLoopback", status.PodsBeyondLoopback, "duration", o.duration.Round(time.Microsecond), "wrote", wrote)
	if wrote {
		log.Info("scanned")
		for _, p := range status.Pods {
			for _, l := range p.Listeners {
				a.log.Info("protected port listens beyond loopback", "pod", p.Namespace+"/"+p.Name,
					"protocol", l.Protocol, "address", l.Address, "port", l.Port, "container", l.Container, "process", l.Process, "pid", l.PID)
			}
		}
	} else {
		log.V(1).Info("scanned, report unchanged")
	}
}

// kick asks for a scan soon; several kicks before it runs make one scan.
func (a *agent) kick() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// watchStarts kicks a scan when a pod that a policy protects starts
// running (any pod with discovery on), and when a policy changes.
func (a *agent) watchStarts(ctx context.Context, c cache.Cache) error {
	inf, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("failed to get the pod informer: %w", err)
	}
	started := func(old, pod *corev1.Pod) bool {
		if pod.Status.Phase != corev1.PodRunning {
			return false
		}
		if old != nil && old.Status.Phase == corev1.PodRunning && startedCount(old) == startedCount(pod) {
			return false
		}
		return a.discover || len(rules.ProtectedRanges(a.index.Env(pod.Namespace), pod.Labels)) > 0
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if pod, ok := o.(*corev1.Pod); ok && started(nil, pod) {
				a.kick()
			}
		},
		UpdateFunc: func(o, n any) {
			old, ok1 := o.(*corev1.Pod)
			pod, ok2 := n.(*corev1.Pod)
			if ok1 && ok2 && started(old, pod) {
				a.kick()
			}
		},
	}); err != nil {
		return fmt.Errorf("failed to watch pods: %w", err)
	}
	for _, obj := range []client.Object{&v1alpha1.LoopbackService{}, &v1alpha1.ClusterLoopbackService{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("failed to get the informer for %T: %w", obj, err)
		}
		kick := func(any) { a.kick() }
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: kick, UpdateFunc: func(_, n any) { a.kick() }, DeleteFunc: kick,
		}); err != nil {
			return fmt.Errorf("failed to watch %T: %w", obj, err)
		}
	}
	return nil
}

// containerStarts is how many of the pod's containers run and how often
// they restarted: a start or restart (a new process that may bind
// differently) changes it.
type containerStarts struct{ running, restarts int32 }

func startedCount(pod *corev1.Pod) containerStarts {
	var c containerStarts
	for _, s := range pod.Status.ContainerStatuses {
		if s.State.Running != nil {
			c.running++
		}
		c.restarts += s.RestartCount
	}
	return c
}

// readyCheck passes once a scan succeeded and its report was written.
func (a *agent) readyCheck(*http.Request) error {
	if !a.scanned.Load() {
		return errors.New("no successful scan yet")
	}
	return nil
}
