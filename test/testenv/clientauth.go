package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/loopguard/loopguard/internal/certs"
)

// WebhookClientName is the common name of the API server's webhook client
// certificate with Options.WebhookClientAuth (the manager pins it).
const WebhookClientName = "kube-apiserver-webhook-client"

// webhookClientAuth makes a client CA and a certificate under it, writes
// the API server's AdmissionConfiguration giving it that certificate for
// the webhook's host:port (fixed here, before the API server starts), and
// loads the CA as the manager does.
func (e *Env) webhookClientAuth() error {
	dir, err := os.MkdirTemp("", "loopguard-webhook-client-")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	wh := &e.env.WebhookInstallOptions
	wh.LocalServingHost, wh.LocalServingPort = "127.0.0.1", port

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loopguard-test-webhook-client-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: WebhookClientName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"client-ca.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"client.crt":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"client.key":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"webhook-kubeconfig.yaml": []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
users:
- name: %q
  user:
    client-certificate: %s
    client-key: %s
`, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))),
		"admission.yaml": []byte(fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %[1]s
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %[1]s
`, filepath.Join(dir, "webhook-kubeconfig.yaml"))),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	e.env.ControlPlane.GetAPIServer().Configure().Set("admission-control-config-file", filepath.Join(dir, "admission.yaml"))
	e.ClientAuth, err = certs.NewClientAuth(filepath.Join(dir, "client-ca.crt"), []string{WebhookClientName})
	return err
}

// webhookServer is the manager's webhook server, as cmd/manager makes it.
func (e *Env) webhookServer() webhook.Server {
	wh := e.env.WebhookInstallOptions
	opts := webhook.Options{Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir}
	if e.ClientAuth == nil {
		return webhook.NewServer(opts)
	}
	opts.TLSOpts = append(opts.TLSOpts, e.ClientAuth.ConfigureTLS)
	return certs.AuthenticatedServer(webhook.NewServer(opts), e.ClientAuth, wh.LocalServingHost, wh.LocalServingPort)
}
