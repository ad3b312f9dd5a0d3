package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	webhookmanifests "github.com/loopguard/loopguard/config/webhook"
	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// registrationFlags are the flags of the webhook registration.
type registrationFlags struct {
	enabled  bool
	url      string
	caFile   string
	excluded string
	failure  string
	timeout  int
}

func (f *registrationFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "webhook-registration", true, "Register the webhooks in --webhook-config-name once the webhook server serves, scoped to the namespaces some policy applies to, and report each policy's Enforced condition. The install creates that configuration with no webhooks; the manager never creates it.")
	fs.StringVar(&f.url, "webhook-url", "", "URL base the API server calls the webhook at (e.g. https://127.0.0.1:9443, hack/dev.sh); empty: the Service --webhook-service-name in the manager's namespace, port 443.")
	fs.StringVar(&f.caFile, "webhook-ca-file", "", "PEM CA the API server must trust for the webhook (caBundle); empty: ca.crt in --webhook-cert-dir (written there by --cert-rotation, or by cert-manager's Secret).")
	fs.StringVar(&f.failure, "webhook-failure-policy", "Fail", "failurePolicy of the registered webhooks: Fail (requests in guarded namespaces are refused while loopguard is unreachable) or Ignore (admitted unchecked).")
	fs.IntVar(&f.timeout, "webhook-timeout-seconds", 5, "timeoutSeconds of the registered webhooks (1 to 30): how long the API server waits for loopguard before applying --webhook-failure-policy.")
	fs.StringVar(&f.excluded, "webhook-excluded-namespaces", "kube-system,kube-public,kube-node-lease", "Comma-separated namespaces the webhooks are never called for (besides the manager's own), so that the control plane and loopguard recover while loopguard is down.")
}

// registration returns the controller's configuration (nil when disabled).
func (f *registrationFlags) registration(configName, service, certDir string) (*controllers.WebhookRegistration, error) {
	if !f.enabled {
		return nil, nil
	}
	fp := admissionregistrationv1.FailurePolicyType(f.failure)
	if fp != admissionregistrationv1.Fail && fp != admissionregistrationv1.Ignore {
		return nil, fmt.Errorf("--webhook-failure-policy=%s: want Fail or Ignore", f.failure)
	}
	if f.timeout < 1 || f.timeout > 30 {
		return nil, fmt.Errorf("--webhook-timeout-seconds=%d: want 1 to 30", f.timeout)
	}
	timeout := int32(f.timeout)
	templates, err := webhookmanifests.Templates()
	if err != nil {
		return nil, err
	}
	ns, nsErr := podNamespace()
	var cc admissionregistrationv1.WebhookClientConfig
	switch {
	case f.url != "":
		u := f.url
		cc.URL = &u
	case nsErr != nil:
		return nil, fmt.Errorf("--webhook-registration needs --webhook-url or the manager's namespace: %w", nsErr)
	default:
		port := int32(443)
		cc.Service = &admissionregistrationv1.ServiceReference{Namespace: ns, Name: service, Port: &port}
	}
	excluded := []string{}
	for _, n := range strings.Split(f.excluded, ",") {
		if n = strings.TrimSpace(n); n != "" {
			excluded = append(excluded, n)
		}
	}
	if nsErr == nil {
		excluded = append(excluded, ns)
	}
	caFile := f.caFile
	if caFile == "" {
		if certDir == "" {
			certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
		}
		caFile = filepath.Join(certDir, "ca.crt")
	}
	return &controllers.WebhookRegistration{
		Name:    configName,
		Options: webhookconfig.Options{Templates: templates, ClientConfig: cc, Excluded: excluded, FailurePolicy: &fp, TimeoutSeconds: &timeout},
		CABundle: func() ([]byte, error) {
			b, err := os.ReadFile(caFile)
			if err == nil && len(b) == 0 {
				err = fmt.Errorf("%s is empty", caFile)
			}
			return b, err
		},
	}, nil
}
