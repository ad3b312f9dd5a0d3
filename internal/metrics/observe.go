package metrics

import (
	"crypto/x509"
	"encoding/pem"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The metrics the dashboard (config/grafana) and the alerts
// (config/prometheus) need beyond the ones in metrics.go.
var (
	// AdmissionPolicyFindings counts admission reviews with a finding, per
	// policy that protects the port and the finding's action (deny, warn,
	// audit): one increment per policy and action per review. Its
	// cardinality is bounded by the policies (times three actions), as
	// loopguard_violations' is.
	AdmissionPolicyFindings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopguard_admission_policy_findings_total",
		Help: "Admission reviews with a finding, by policy and the finding's action (deny, warn, audit).",
	}, []string{"policy_kind", "policy_namespace", "policy", "action"})

	// NamespaceAudits counts the policy reconcilers' audits of one
	// namespace by result: "audited" when the rules ran, "unchanged" when
	// nothing the audit reads had changed since the last one and its
	// result was kept.
	NamespaceAudits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loopguard_namespace_audits_total",
		Help: "Audits of one namespace against one policy by the policy reconcilers, by policy kind and result (audited: the rules ran; unchanged: nothing it reads had changed, the last result was kept).",
	}, []string{"policy_kind", "result"})
)

// certificateExpiryDesc describes the webhook serving certificate's expiry.
var certificateExpiryDesc = prometheus.NewDesc("loopguard_webhook_certificate_expiry_timestamp_seconds",
	"Expiry (notAfter, Unix seconds) of the webhook serving certificate the manager reads from its certificate directory.",
	nil, nil)

// certificateExpiry reads the certificate file at each scrape, so a
// rotated certificate shows at once; an unreadable file yields no sample
// (the alert on absence catches it).
type certificateExpiry struct{ file string }

func (c certificateExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- certificateExpiryDesc }

func (c certificateExpiry) Collect(ch chan<- prometheus.Metric) {
	if notAfter, ok := CertificateNotAfter(c.file); ok {
		ch <- prometheus.MustNewConstMetric(certificateExpiryDesc, prometheus.GaugeValue, notAfter)
	}
}

// CertificateNotAfter returns the notAfter of the first certificate in a
// PEM file, in Unix seconds.
func CertificateNotAfter(file string) (float64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return 0, false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return 0, false
	}
	return float64(cert.NotAfter.Unix()), true
}

// RegisterCertificateExpiry exports the expiry of the webhook serving
// certificate in certFile (the manager's --webhook-cert-dir/tls.crt).
func RegisterCertificateExpiry(certFile string) error {
	return crmetrics.Registry.Register(certificateExpiry{file: certFile})
}

func registerObserve() {
	crmetrics.Registry.MustRegister(AdmissionPolicyFindings, NamespaceAudits)
}
