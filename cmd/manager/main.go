// Command manager runs loopguard: the exposure admission webhook and the
// controllers that keep NetworkPolicies and audit what already exists.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/loopguard/loopguard/cmd/manager/wiring"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/certs"
	"github.com/loopguard/loopguard/internal/memlimit"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/metricsauth"
	"github.com/loopguard/loopguard/internal/version"
)

func main() {
	var (
		metricsAddr, probeAddr     string
		webhookHost, webhookCert   string
		webhookPort                int
		leaderElect, secureMetrics bool
		enableHTTP2                bool
		auditInterval              time.Duration
		certRotation               bool
		certSecret, webhookService string
		webhookConfig              string
		webhookDrain               time.Duration
		leaderElectionNamespace    string
		pprofAddr                  string
		concurrentReconciles       int
		clusterPolicyBatch         time.Duration
		webhookClientCA            string
		webhookClientNames         string
		metricsCertDir             string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint (HTTPS when --metrics-secure); \"0\" disables it.")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "", "Directory with the metrics endpoint's serving certificate (tls.crt, tls.key), e.g. cert-manager's, which a ServiceMonitor can verify; empty: a self-signed certificate made at start.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, to callers that Kubernetes authenticates and authorizes.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the plain-HTTP /healthz and /readyz probes.")
	flag.StringVar(&webhookHost, "webhook-bind-address", "", "Address the webhook server listens on (empty: all).")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	flag.StringVar(&webhookCert, "webhook-cert-dir", "", "Directory with the webhook serving certificate (tls.crt, tls.key); empty: controller-runtime's default. With --cert-rotation the manager writes it there (it must be writable).")
	flag.BoolVar(&certRotation, "cert-rotation", true, "Generate and renew the webhook serving certificate in the Secret --cert-secret-name and keep the caBundle of --webhook-config-name current (no cert-manager needed). Off: the certificate in --webhook-cert-dir comes from elsewhere (cert-manager, hack/dev.sh).")
	flag.StringVar(&certSecret, "cert-secret-name", "loopguard-webhook-server-cert", "Secret, in the manager's namespace (POD_NAMESPACE), that holds the webhook certificate when --cert-rotation.")
	flag.StringVar(&webhookService, "webhook-service-name", "loopguard-webhook-service", "Service of the webhook: the certificate is issued for <service>.<namespace>.svc.")
	flag.DurationVar(&webhookDrain, "webhook-drain-delay", 0, "On shutdown, keep serving the webhook this long while telling the API server to close its connections (Connection: close), so that a rolling update fails no admission request; config/manager sets 5s.")
	flag.StringVar(&webhookClientCA, "webhook-client-ca", "", "PEM bundle of the CA(s) that sign the API server's webhook client certificate (its AdmissionConfiguration kubeconfig, docs/webhook-auth.md). Set: the webhook serves only callers presenting a certificate they signed, and re-reads the file when it changes. Empty: anything that reaches the webhook port is served.")
	flag.StringVar(&webhookClientNames, "webhook-client-names", "", "Comma-separated common or DNS names the webhook client certificate must carry (e.g. kube-apiserver-webhook-client); empty: any certificate --webhook-client-ca signed.")
	flag.StringVar(&webhookConfig, "webhook-config-name", "loopguard-validating-webhook-configuration", "ValidatingWebhookConfiguration whose caBundle --cert-rotation keeps current.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles; every replica serves the webhook.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (empty: the in-cluster namespace; required with --leader-elect outside a cluster).")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Serve HTTP/2 on the webhook and metrics servers (off: HTTP/2 rapid-reset and stream-cancellation CVEs).")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of the Go profiler's /debug/pprof endpoints, plain HTTP and unauthenticated: bind it to loopback (127.0.0.1:6065) and only while profiling; empty disables it.")
	flag.IntVar(&concurrentReconciles, "concurrent-reconciles", app.ConcurrentReconciles, "Workers of each controller (policies, NetworkPolicies, reports); one object is never reconciled by two at once.")
	flag.DurationVar(&clusterPolicyBatch, "cluster-policy-batch-period", app.ClusterPolicyBatchPeriod, "Fold the changes in the namespaces a ClusterLoopbackService selects into one reconcile per period (its status and NetworkPolicies follow at most this much later, or 3x its last reconcile's duration, at most 10s, when that is longer; admission does not wait). 0 disables the batching.")
	flag.DurationVar(&auditInterval, "audit-interval", time.Hour, "How often every policy is audited in full, besides on every change (the periodic review).")
	var regFlags registrationFlags
	regFlags.bind(flag.CommandLine)
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	log.Info("loopguard manager", version.KeysAndValues()...)
	if clusterPolicyBatch < 0 || clusterPolicyBatch > 10*time.Second {
		log.Error(fmt.Errorf("--cluster-policy-batch-period=%s: want 0 to 10s", clusterPolicyBatch), "invalid flag")
		os.Exit(2)
	}
	if concurrentReconciles < 1 || concurrentReconciles > 64 {
		log.Error(fmt.Errorf("--concurrent-reconciles=%d: want 1 to 64", concurrentReconciles), "invalid flag")
		os.Exit(2)
	}
	if soft, err := memlimit.Set("/sys/fs/cgroup"); err != nil {
		log.Error(err, "no soft memory limit set; the garbage collector runs by GOGC alone")
	} else if soft > 0 {
		log.Info("soft memory limit set from the container's memory limit (GOMEMLIMIT overrides)", "bytes", soft, "fraction", memlimit.Fraction)
	}

	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts, CertDir: metricsCertDir}
	if secureMetrics {
		metricsOpts.FilterProvider = metricsauth.Provider
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "unable to load a kubeconfig or in-cluster config")
		os.Exit(1)
	}
	var webhookServer webhook.Server
	var rotation *certs.Options
	if certRotation {
		if webhookCert == "" {
			webhookCert = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
		}
		ns, err := podNamespace()
		if err != nil {
			log.Error(err, "--cert-rotation needs the manager's namespace")
			os.Exit(1)
		}
		rotation = &certs.Options{Namespace: ns, SecretName: certSecret, ServiceName: webhookService,
			WebhookConfigName: webhookConfig, CertDir: webhookCert}
	}
	clientAuth, err := webhookClientAuth(webhookClientCA, webhookClientNames)
	if err != nil {
		log.Error(err, "unable to load the webhook client CA (--webhook-client-ca)")
		os.Exit(1)
	}
	webhookTLS := tlsOpts
	if clientAuth != nil {
		webhookTLS = append(slices.Clone(tlsOpts), clientAuth.ConfigureTLS)
		log.Info("the webhook authenticates its callers: a client certificate signed by --webhook-client-ca is required",
			"clientCA", clientAuth.File(), "allowedNames", clientAuth.Names())
	} else {
		log.Info("the webhook does not authenticate its callers: whatever reaches its port can post AdmissionReviews (forged port-forward Events, logs and metrics); set --webhook-client-ca, see docs/webhook-auth.md")
	}
	webhookServer = webhook.NewServer(webhook.Options{
		Host: webhookHost, Port: webhookPort, CertDir: webhookCert, TLSOpts: webhookTLS,
	})
	certDir := webhookCert
	if certDir == "" {
		certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	if err := metrics.RegisterCertificateExpiry(filepath.Join(certDir, "tls.crt")); err != nil {
		log.Error(err, "unable to register the certificate expiry metric")
		os.Exit(1)
	}
	if clientAuth != nil {
		webhookServer = certs.AuthenticatedServer(webhookServer, clientAuth, webhookHost, webhookPort)
	}
	// The webhook server reads its certificate when it starts: with
	// rotation, it waits until the rotator's certificate is on disk. On
	// shutdown it drains for --webhook-drain-delay.
	filesWritten := make(chan struct{})
	if rotation == nil {
		close(filesWritten)
	}
	webhookServer = certs.GateServer(webhookServer, filesWritten, webhookDrain)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        app.Scheme(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "loopguard.loopguard.io",
		LeaderElectionNamespace:       leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		WebhookServer:                 webhookServer,
		Cache:                         app.CacheOptions(),
		PprofBindAddress:              pprofAddr,
		Controller:                    config.Controller{MaxConcurrentReconciles: concurrentReconciles},
	})
	if err != nil {
		log.Error(err, "unable to create manager")
		os.Exit(1)
	}

	if clientAuth != nil {
		if err := mgr.Add(clientAuth); err != nil {
			log.Error(err, "unable to watch the webhook client CA")
			os.Exit(1)
		}
	}
	if rotation != nil {
		r, err := certs.Setup(mgr, *rotation)
		if err != nil {
			log.Error(err, "unable to set up certificate rotation")
			os.Exit(1)
		}
		go func() { <-r.FilesWritten; close(filesWritten) }()
		if err := mgr.AddReadyzCheck("webhook-certificate", r.ReadyCheck()); err != nil {
			log.Error(err, "unable to add the certificate ready check")
			os.Exit(1)
		}
		log.Info("webhook certificate rotation enabled", "secret", rotation.Namespace+"/"+rotation.SecretName,
			"dnsName", rotation.DNSName(), "webhookConfiguration", rotation.WebhookConfigName, "certDir", rotation.CertDir)
	}

	registration, err := regFlags.registration(webhookConfig, webhookService, webhookCert)
	if err != nil {
		log.Error(err, "unable to configure the webhook registration")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	if _, err := wiring.Setup(ctx, mgr, wiring.Options{AuditInterval: auditInterval, ClusterPolicyBatchPeriod: batchOption(clusterPolicyBatch), Registration: registration}); err != nil {
		log.Error(err, "unable to set up loopguard")
		os.Exit(1)
	}

	log.Info("starting manager", "webhook", webhookHost, "webhookPort", webhookPort, "metrics", metricsAddr, "probes", probeAddr, "leaderElection", leaderElect, "certRotation", certRotation)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager exited with an error")
		os.Exit(1)
	}
}

// webhookClientAuth loads --webhook-client-ca (nil when unset) with the
// names of --webhook-client-names.
func webhookClientAuth(caFile, names string) (*certs.ClientAuth, error) {
	if caFile == "" {
		if names != "" {
			return nil, fmt.Errorf("--webhook-client-names needs --webhook-client-ca")
		}
		return nil, nil
	}
	var list []string
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			list = append(list, n)
		}
	}
	return certs.NewClientAuth(caFile, list)
}

// podNamespace is the manager's namespace: POD_NAMESPACE (the downward API,
// as config/manager sets it), else the service account's namespace file.
func podNamespace() (string, error) {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return "", fmt.Errorf("POD_NAMESPACE is not set and no in-cluster namespace file: %w", err)
	}
	if ns := strings.TrimSpace(string(b)); ns != "" {
		return ns, nil
	}
	return "", fmt.Errorf("POD_NAMESPACE is not set and the in-cluster namespace file is empty")
}

// batchOption maps --cluster-policy-batch-period to wiring.Options, where
// 0 is the default and a negative period disables the batching.
func batchOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
