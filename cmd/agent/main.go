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
	"k8s.io/client-go/rest"
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
	"github.com/loopguard/loopguard/internal/version"
)

// options are the agent's flags.
type options struct {
	nodeName, procRoot, cgroupRoot string
	metricsAddr, probeAddr         string
	scanInterval, reportRefresh    time.Duration
	discovery                      bool
}

func main() {
	var o options
	flag.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "Name of this node (the downward API's spec.nodeName); its NodeBindReport has this name.")
	flag.StringVar(&o.procRoot, "proc-root", "/proc", "The host's procfs: in the agent's pod (hostPID) its own /proc shows every process of the node.")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "", "The host's cgroup tree (e.g. /sys/fs/cgroup, mounted read-only) to find pods in by their pod UID; empty (the default, cheaper on a cgroup v1 node and needs no mount): through <proc-root>/<pid>/cgroup.")
	flag.DurationVar(&o.scanInterval, "scan-interval", time.Minute, "Period between scans; a protected pod that starts is scanned at once besides.")
	flag.DurationVar(&o.reportRefresh, "report-refresh", 5*time.Minute, "A report whose findings did not change is rewritten (to refresh status.scannedAt) after this long; changes are written at once.")
	flag.BoolVar(&o.discovery, "discovery", false, "Also record what every pod listens on, on ports no policy protects for it (loopback included), in status.discovery of the node's report: what `loopguard discover` proposes policies from.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "Metrics address, loopback by default (plain HTTP, read with kubectl port-forward); \"0\" disables it.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz for the kubelet's probes, on the pod IP (they say ok or not, nothing else).")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("agent")
	log.Info("loopguard agent", version.KeysAndValues()...)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "unable to load a kubeconfig or in-cluster config")
		os.Exit(1)
	}
	registerMetrics()
	if err := run(ctrl.SetupSignalHandler(), cfg, o); err != nil {
		log.Error(err, "agent failed", "node", o.nodeName)
		os.Exit(1)
	}
}

// run runs the agent until ctx ends; it returns nil on a graceful stop.
func run(ctx context.Context, cfg *rest.Config, o options) error {
	log := ctrl.Log.WithName("agent").WithValues("node", o.nodeName)
	if o.nodeName == "" {
		return errors.New("--node-name (or NODE_NAME) is required: set it from the downward API's spec.nodeName")
	}
	if o.scanInterval < time.Second {
		return fmt.Errorf("--scan-interval %s is too short (at least 1s)", o.scanInterval)
	}
	if _, err := os.Stat(o.procRoot + "/1/cgroup"); err != nil {
		return fmt.Errorf("--proc-root %s does not look like the host's procfs: %w", o.procRoot, err)
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 scheme(),
		Metrics:                metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress: o.probeAddr,
		Cache: cache.Options{
			DefaultTransform: slim.StripManagedFields,
			ByObject: map[client.Object]cache.ByObject{
				// This node's pods alone: the agent never sees the others.
				&corev1.Pod{}: {Field: fields.OneTermEqualSelector("spec.nodeName", o.nodeName)},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	var node corev1.Node
	if err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Name: o.nodeName}, &node); err != nil {
		return fmt.Errorf("failed to get node %s (--node-name must name the node the agent runs on): %w", o.nodeName, err)
	}
	index := policyindex.New()
	if err := policyindex.Register(ctx, mgr.GetCache(), index, log.WithName("index")); err != nil {
		return fmt.Errorf("failed to watch the policies: %w", err)
	}
	writer := &reportWriter{c: mgr.GetClient(), reader: mgr.GetAPIReader(), node: &node, refresh: o.reportRefresh}
	a := newAgent(log, mgr.GetCache(), index, &bindscan.Scanner{ProcRoot: o.procRoot, CgroupRoot: o.cgroupRoot}, writer, o.scanInterval, o.discovery)
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
	log.Info("starting", "procRoot", o.procRoot, "cgroupRoot", o.cgroupRoot, "scanInterval", o.scanInterval, "reportRefresh", o.reportRefresh, "discovery", o.discovery)
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
