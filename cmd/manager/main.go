// Command manager runs loopguard: the exposure admission webhook and the
// controllers that keep NetworkPolicies and audit what already exists.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/loopguard/loopguard/internal/app"
)

func main() {
	var (
		metricsAddr, probeAddr     string
		webhookHost, webhookCert   string
		webhookPort                int
		leaderElect, secureMetrics bool
		enableHTTP2                bool
		auditInterval              time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint (HTTPS when --metrics-secure); \"0\" disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, to callers that Kubernetes authenticates and authorizes.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the plain-HTTP /healthz and /readyz probes.")
	flag.StringVar(&webhookHost, "webhook-bind-address", "", "Address the webhook server listens on (empty: all).")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	flag.StringVar(&webhookCert, "webhook-cert-dir", "", "Directory with the webhook serving certificate (tls.crt, tls.key); empty: controller-runtime's default.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles; every replica serves the webhook.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Serve HTTP/2 on the webhook and metrics servers (off: HTTP/2 rapid-reset and stream-cancellation CVEs).")
	flag.DurationVar(&auditInterval, "audit-interval", time.Hour, "How often every policy is audited in full, besides on every change (the periodic review).")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "unable to load a kubeconfig or in-cluster config")
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        app.Scheme(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "loopguard.loopguard.io",
		LeaderElectionReleaseOnCancel: true,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: webhookHost, Port: webhookPort, CertDir: webhookCert, TLSOpts: tlsOpts,
		}),
		Cache: app.CacheOptions(),
	})
	if err != nil {
		log.Error(err, "unable to create manager")
		os.Exit(1)
	}

	ctx := ctrl.SetupSignalHandler()
	if _, err := app.Setup(ctx, mgr, app.Options{AuditInterval: auditInterval}); err != nil {
		log.Error(err, "unable to set up loopguard")
		os.Exit(1)
	}

	log.Info("starting manager", "webhook", webhookHost, "webhookPort", webhookPort, "metrics", metricsAddr, "probes", probeAddr, "leaderElection", leaderElect)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager exited with an error")
		os.Exit(1)
	}
}
