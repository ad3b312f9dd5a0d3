package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// ClientAuth makes the webhook server authenticate its callers: the TLS
// handshake requires a client certificate signed by a CA of the bundle
// --webhook-client-ca names (the certificate the API server presents from
// its AdmissionConfiguration kubeconfig, docs/webhook-auth.md), and, with
// allowed names, one whose common name or DNS name is among them. Anything
// else that reaches the port (a pod forging AdmissionReviews under another
// user's name) is refused before a byte of HTTP is read.
//
// The bundle is re-read when it changes, as controller-runtime's
// certwatcher re-reads the serving pair: a file watch, and a poll every
// ClientCAPollInterval for what a watch misses (a ConfigMap volume's
// symlink swap). A bundle that no longer parses is logged and the last good
// one kept.
//
// The manager's own readiness probe (the webhook server's StartedChecker
// dials it) presents a certificate made at startup under a CA of its own
// whose key is dropped once that one certificate is signed: only this
// process holds a key that chains to it.
type ClientAuth struct {
	file  string
	names []string
	log   logr.Logger

	mu   sync.Mutex
	last []byte // the bundle's bytes as last loaded
	pool atomic.Pointer[x509.CertPool]

	probeCA *x509.Certificate
	probe   tls.Certificate
}

// ClientCAPollInterval is how often the bundle is re-read besides the file
// watch (certwatcher's interval).
var ClientCAPollInterval = 10 * time.Second

// NewClientAuth loads the CA bundle in file; names, when not empty, are the
// only common or DNS names a client certificate may carry. A bundle that
// cannot be read or holds no certificate is an error.
func NewClientAuth(file string, names []string) (*ClientAuth, error) {
	a := &ClientAuth{file: file, names: slices.Clone(names), log: logf.Log.WithName("webhook-client-auth")}
	if err := a.makeProbe(); err != nil {
		return nil, err
	}
	if _, err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

// File is the CA bundle's path.
func (a *ClientAuth) File() string { return a.file }

// Names are the allowed client names (empty: any the CA signed).
func (a *ClientAuth) Names() []string { return slices.Clone(a.names) }

// parseBundle returns the certificates of a PEM bundle; anything but
// CERTIFICATE blocks, or none at all, is an error.
func parseBundle(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				return nil, errors.New("trailing data that is not PEM")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a %q PEM block, want only CERTIFICATE blocks", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return certs, nil
}

// load reads the bundle and installs it if it changed; it reports whether
// it did.
func (a *ClientAuth) load() (bool, error) {
	data, err := os.ReadFile(a.file)
	if err != nil {
		return false, fmt.Errorf("webhook client CA %s: %w", a.file, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pool.Load() != nil && bytes.Equal(data, a.last) {
		return false, nil
	}
	certs, err := parseBundle(data)
	if err != nil {
		return false, fmt.Errorf("webhook client CA %s: %w", a.file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	pool.AddCert(a.probeCA)
	a.pool.Store(pool)
	a.last = data
	subjects := make([]string, len(certs))
	for i, c := range certs {
		subjects[i] = c.Subject.String()
	}
	a.log.Info("webhook client CA loaded: only callers with a certificate it signed are served", "file", a.file, "certificates", subjects, "allowedNames", a.names)
	return true, nil
}

// ConfigureTLS is a TLS option of the webhook server (webhook.Options.TLSOpts):
// every handshake requires and verifies a client certificate against the
// current bundle.
func (a *ClientAuth) ConfigureTLS(c *tls.Config) {
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = a.pool.Load()
	// The bundle of the moment, per connection: c is the server's final
	// config (controller-runtime sets its GetCertificate after the options).
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cc := c.Clone()
		cc.GetConfigForClient = nil
		cc.ClientCAs = a.pool.Load()
		return cc, nil
	}
	c.VerifyConnection = a.verifyName
	// A resumed session would skip the verification against a bundle
	// reloaded since: every connection shows its certificate.
	c.SessionTicketsDisabled = true
}

// verifyName checks the verified client certificate's names against the
// allowed ones.
func (a *ClientAuth) verifyName(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	if len(a.names) == 0 || bytes.Equal(leaf.Raw, a.probe.Certificate[0]) {
		return nil
	}
	if slices.Contains(a.names, leaf.Subject.CommonName) {
		return nil
	}
	for _, n := range leaf.DNSNames {
		if slices.Contains(a.names, n) {
			return nil
		}
	}
	return fmt.Errorf("client certificate %q (DNS names %v) is not one of the allowed webhook clients %v", leaf.Subject.CommonName, leaf.DNSNames, a.names)
}

// makeProbe issues the readiness probe's client certificate from a CA made
// for it alone, whose key is then dropped.
func (a *ClientAuth) makeProbe() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		return n
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "loopguard-webhook-probe-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(100 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	if a.probeCA, err = x509.ParseCertificate(caDER); err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "loopguard-webhook-readiness-probe"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.probeCA, key.Public(), caKey)
	if err != nil {
		return err
	}
	a.probe = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return nil
}

// Start watches the bundle until ctx ends (a manager Runnable).
func (a *ClientAuth) Start(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(a.file); err != nil {
		a.log.Error(err, "cannot watch the webhook client CA; polling it only", "file", a.file, "interval", ClientCAPollInterval)
	}
	reload := func() {
		if _, err := a.load(); err != nil {
			a.log.Error(err, "keeping the last webhook client CA")
		}
	}
	tick := time.NewTicker(ClientCAPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			reload()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			// Replaced by rename, or a ConfigMap volume's symlink swap:
			// watch the new file.
			if ev.Op.Has(fsnotify.Remove) || ev.Op.Has(fsnotify.Rename) || ev.Op.Has(fsnotify.Chmod) {
				_ = w.Add(a.file)
			}
			reload()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			a.log.Error(err, "watching the webhook client CA", "file", a.file)
		}
	}
}

// NeedLeaderElection: every replica serves the webhook.
func (a *ClientAuth) NeedLeaderElection() bool { return false }

// ProbeTLS is a client TLS configuration that presents the readiness
// probe's certificate (and, like controller-runtime's own probe, does not
// verify the server: it only asks whether the server answers).
func (a *ClientAuth) ProbeTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{a.probe}, MinVersion: tls.VersionTLS12} //nolint:gosec // a liveness dial to itself
}

// AuthenticatedServer wraps a webhook server whose TLS options include
// a.ConfigureTLS: its StartedChecker completes a handshake with the probe
// certificate, where controller-runtime's would offer none and have every
// probe logged as a refused handshake. host and port are the server's.
func AuthenticatedServer(inner webhook.Server, a *ClientAuth, host string, port int) webhook.Server {
	return &authServer{Server: inner, auth: a, addr: net.JoinHostPort(host, strconv.Itoa(port))}
}

type authServer struct {
	webhook.Server
	auth *ClientAuth
	addr string
}

func (s *authServer) StartedChecker() healthz.Checker {
	tr := &http.Transport{
		Proxy:             nil,
		TLSClientConfig:   s.auth.ProbeTLS(),
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, s.addr)
		},
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return func(*http.Request) error {
		// Any HTTP answer (404 for /) means: listening, serving, and this
		// process's certificate accepted.
		resp, err := client.Get("https://loopguard-webhook/")
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return resp.Body.Close()
	}
}
