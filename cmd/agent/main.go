// Command agent (loopguard-agent) runs on every node: it proves, from the
// kernel's socket tables, which pods that a policy protects listen on a
// protected port beyond loopback, and writes its node's NodeBindReport.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/bindscan"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/slim"
)

func main() {
	var (
		nodeName, procRoot, cgroupRoot string
		metricsAddr, probeAddr         string
		scanInterval, reportRefresh    time.Duration
	)
	flag.StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "Name of this node (the downward API's spec.nodeName); its NodeBindReport has this name.")
	flag.StringVar(&procRoot, "proc-root", "/proc", "The host's procfs (the agent needs hostPID; in its pod the host's /proc is mounted read-only at /host/proc).")
	flag.StringVar(&cgroupRoot, "cgroup-root", "", "The host's cgroup tree (e.g. /sys/fs/cgroup, mounted read-only) to find pods in by their pod UID; empty (the default, ten times cheaper on a cgroup v1 node): through <proc-root>/<pid>/cgroup.")
	flag.DurationVar(&scanInterval, "scan-interval", time.Minute, "Period between scans; a protected pod that starts is scanned at once besides.")
	flag.DurationVar(&reportRefresh, "report-refresh", 5*time.Minute, "A report whose findings did not change is rewritten (to refresh status.scannedAt) after this long; changes are written at once.")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "Metrics address, loopback by default (plain HTTP, read with kubectl port-forward); \"0\" disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz for the kubelet's probes, on the pod IP (they say ok or not, nothing else).")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("agent")
	if err := run(ctrl.SetupSignalHandler(), nodeName, procRoot, cgroupRoot, metricsAddr, probeAddr, scanInterval, reportRefresh); err != nil {
		log.Error(err, "agent failed", "node", nodeName)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodeName, procRoot, cgroupRoot, metricsAddr, probeAddr string, scanInterval, reportRefresh time.Duration) error {
	log := ctrl.Log.WithName("agent").WithValues("node", nodeName)
	if nodeName == "" {
		return errors.New("--node-name (or NODE_NAME) is required: set it from the downward API's spec.nodeName")
	}
	if scanInterval < time.Second {
		return fmt.Errorf("--scan-interval %s is too short (at least 1s)", scanInterval)
	}
	if _, err := os.Stat(procRoot + "/1/cgroup"); err != nil {
		return fmt.Errorf("--proc-root %s does not look like the host's procfs: %w", procRoot, err)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load a kubeconfig or in-cluster config: %w", err)
	}
	registerMetrics()
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 scheme(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		Cache: cache.Options{
			DefaultTransform: slim.StripManagedFields,
			ByObject: map[client.Object]cache.ByObject{
				// This node's pods alone: the agent never sees the others.
				&corev1.Pod{}: {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	var node corev1.Node
	if err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Name: nodeName}, &node); err != nil {
		return fmt.Errorf("failed to get node %s (--node-name must name the node the agent runs on): %w", nodeName, err)
	}
	index := policyindex.New()
	if err := policyindex.Register(ctx, mgr.GetCache(), index, log.WithName("index")); err != nil {
		return fmt.Errorf("failed to watch the policies: %w", err)
	}
	writer := &reportWriter{c: mgr.GetClient(), reader: mgr.GetAPIReader(), node: &node, refresh: reportRefresh}
	a := newAgent(log, mgr.GetCache(), index, &bindscan.Scanner{ProcRoot: procRoot, CgroupRoot: cgroupRoot}, writer, scanInterval)
	if err := a.watchStarts(ctx, mgr.GetCache()); err != nil {
		return err
	}
	if err := mgr.Add(a); err != nil {
		return fmt.Errorf("failed to add the scanner: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("scanned", a.readyCheck); err != nil {
		return fmt.Errorf("failed to add the readiness check: %w", err)
	}
	log.Info("starting", "procRoot", procRoot, "cgroupRoot", cgroupRoot, "scanInterval", scanInterval, "reportRefresh", reportRefresh)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager stopped: %w", err)
	}
	return nil
}

// scheme has the built-in kinds and loopguard's API (not the manager's
// app.Scheme: the agent links none of the controllers).
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}
