// Command emptywebhook is the floor of any admission webhook, for the
// registration benchmark (bench/registrationbench): it admits every
// AdmissionReview, served exactly as the manager serves its webhook
// (controller-runtime's webhook server, TLS 1.2+, HTTP/1.1 only, the same
// certificate directory and, with --webhook-client-ca, the same client
// certificate authentication). What it adds to a request is the API
// server's HTTPS call and the review's decoding, nothing else.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/loopguard/loopguard/internal/certs"
	"github.com/loopguard/loopguard/test/workload"
)

// Path is where it serves.
const Path = "/validate-empty"

func main() {
	host := flag.String("bind-address", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 9500, "port")
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	clientCA := flag.String("webhook-client-ca", "", "as the manager's --webhook-client-ca")
	clientNames := flag.String("webhook-client-names", "", "as the manager's --webhook-client-names")
	metricsPort := flag.Int("metrics-port", 0, "serve controller-runtime's metrics (the handler's latency) on 127.0.0.1:<port>/metrics; 0: off")
	flag.Parse()

	tlsOpts := []func(*tls.Config){
		func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 },
		func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} },
	}
	var auth *certs.ClientAuth
	if *clientCA != "" {
		var names []string
		for _, n := range strings.Split(*clientNames, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		var err error
		if auth, err = certs.NewClientAuth(*clientCA, names); err != nil {
			fail(err)
		}
		tlsOpts = append(tlsOpts, auth.ConfigureTLS)
	}
	var srv webhook.Server = webhook.NewServer(webhook.Options{Host: *host, Port: *port, CertDir: *certDir, TLSOpts: tlsOpts})
	if auth != nil {
		srv = certs.AuthenticatedServer(srv, auth, *host, *port)
	}
	srv.Register(Path, http.HandlerFunc(workload.AdmitAll))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if auth != nil {
		go func() { _ = auth.Start(ctx) }()
	}
	if *metricsPort > 0 {
		go serveMetrics(*metricsPort)
	}
	fmt.Fprintf(os.Stderr, "emptywebhook: admitting everything at https://%s:%d%s\n", *host, *port, Path)
	if err := srv.Start(ctx); err != nil {
		fail(err)
	}
}

// serveMetrics serves the registry the webhook server records its
// handler's latency in (controller_runtime_webhook_latency_seconds), as
// the manager's metrics do, for the benchmark's breakdown.
func serveMetrics(port int) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fail(srv.ListenAndServe())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "emptywebhook:", err)
	os.Exit(1)
}
