package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf for cn (and dns names) with the given usage.
func (ca testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := writeAtomic(path, data); err != nil {
		t.Fatal(err)
	}
}

// serve runs an HTTPS server configured as the manager configures its
// webhook server (TLS 1.2 minimum, then ConfigureTLS) and returns its
// address.
func serve(t *testing.T, a *ClientAuth, serving tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	a.ConfigureTLS(cfg)
	// Set after the options, as controller-runtime sets GetCertificate.
	cfg.Certificates = []tls.Certificate{serving}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "reviewed") }),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          nil,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// post is a caller: the API server with its client certificate, or a pod
// without one (client == nil).
func post(addr string, client *tls.Certificate, tlsMax uint16) error {
	cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tlsMax} //nolint:gosec // the caller's trust is not under test
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := c.Post("https://"+addr+"/validate-portforward", "application/json", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "reviewed" {
		return &net.OpError{Op: "read", Err: io.ErrUnexpectedEOF}
	}
	return nil
}

func TestClientAuthVerifiesTheCaller(t *testing.T) {
	apiCA := newTestCA(t, "api-server-webhook-client-ca")
	otherCA := newTestCA(t, "someone-else-ca")
	servingCA := newTestCA(t, "serving-ca")
	serving := servingCA.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	file := filepath.Join(t.TempDir(), "client-ca.crt")
	writeFile(t, file, apiCA.pem)

	apiserver := apiCA.issue(t, "kube-apiserver-webhook-client", x509.ExtKeyUsageClientAuth)
	bySAN := apiCA.issue(t, "front", x509.ExtKeyUsageClientAuth, "kube-apiserver-webhook-client")
	otherName := apiCA.issue(t, "system:node:worker-1", x509.ExtKeyUsageClientAuth)
	serverUsage := apiCA.issue(t, "kube-apiserver-webhook-client", x509.ExtKeyUsageServerAuth)
	foreign := otherCA.issue(t, "kube-apiserver-webhook-client", x509.ExtKeyUsageClientAuth)

	for _, tc := range []struct {
		name   string
		names  []string
		client *tls.Certificate
		ok     bool
	}{
		{name: "no certificate (a pod forging a review)", client: nil},
		{name: "certificate from another CA", client: &foreign},
		{name: "certificate for servers only", client: &serverUsage},
		{name: "the API server's certificate", client: &apiserver, ok: true},
		{name: "any name the CA signed, no names pinned", client: &otherName, ok: true},
		{name: "pinned name as common name", names: []string{"kube-apiserver-webhook-client"}, client: &apiserver, ok: true},
		{name: "pinned name as DNS name", names: []string{"kube-apiserver-webhook-client"}, client: &bySAN, ok: true},
		{name: "a name not pinned", names: []string{"kube-apiserver-webhook-client"}, client: &otherName},
		{name: "pinned, no certificate", names: []string{"kube-apiserver-webhook-client"}, client: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewClientAuth(file, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			addr := serve(t, a, serving)
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				err := post(addr, tc.client, v)
				if tc.ok && err != nil {
					t.Errorf("TLS %x: refused: %v", v, err)
				}
				if !tc.ok && err == nil {
					t.Errorf("TLS %x: served, want the handshake refused", v)
				}
			}
		})
	}
}

func TestNewClientAuthRefusesABadBundle(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ca")
	keyDER, _ := x509.MarshalECPrivateKey(ca.key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	for _, tc := range []struct {
		name, want string
		data       []byte // nil: no file
	}{
		{name: "missing", want: "no such file"},
		{name: "empty", data: []byte{}, want: "no PEM certificate"},
		{name: "not PEM", data: []byte("hello"), want: "not PEM"},
		{name: "a key", data: keyPEM, want: `"EC PRIVATE KEY" PEM block`},
		{name: "a CA then a key", data: append(append([]byte{}, ca.pem...), keyPEM...), want: `"EC PRIVATE KEY" PEM block`},
		{name: "a broken certificate", data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), want: "certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".crt")
			if tc.data != nil {
				writeFile(t, file, tc.data)
			}
			_, err := NewClientAuth(file, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("NewClientAuth(%s) = %v, want an error naming the file and %q", tc.name, err, tc.want)
			}
		})
	}
	two := filepath.Join(dir, "two.crt")
	writeFile(t, two, append(append([]byte{}, ca.pem...), newTestCA(t, "ca2").pem...))
	if _, err := NewClientAuth(two, nil); err != nil {
		t.Fatalf("a bundle of two CAs: %v", err)
	}
}

// eventually retries f (a handshake) until it returns nil, for at most 20s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 20s", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClientAuthReloadsTheBundle(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old-ca"), newTestCA(t, "new-ca")
	servingCA := newTestCA(t, "serving-ca")
	serving := servingCA.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	file := filepath.Join(t.TempDir(), "client-ca.crt")
	writeFile(t, file, oldCA.pem)
	a, err := NewClientAuth(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	addr := serve(t, a, serving)
	oldClient := oldCA.issue(t, "kube-apiserver-webhook-client", x509.ExtKeyUsageClientAuth)
	newClient := newCA.issue(t, "kube-apiserver-webhook-client", x509.ExtKeyUsageClientAuth)
	if err := post(addr, &oldClient, 0); err != nil {
		t.Fatalf("old CA's client refused: %v", err)
	}
	if err := post(addr, &newClient, 0); err == nil {
		t.Fatal("new CA's client served before the bundle names it")
	}

	// Replaced by rename (as a ConfigMap volume or a rotation writes it).
	writeFile(t, file, newCA.pem)
	eventually(t, "the new CA's client after the bundle changed", func() error { return post(addr, &newClient, 0) })
	if err := post(addr, &oldClient, 0); err == nil {
		t.Fatal("old CA's client still served after the bundle dropped it")
	}

	// A broken bundle is logged; the last good one stays.
	writeFile(t, file, []byte("not a certificate"))
	if _, err := a.load(); err == nil {
		t.Fatal("load of a broken bundle succeeded")
	}
	if err := post(addr, &newClient, 0); err != nil {
		t.Fatalf("the last good bundle was dropped: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// TestAuthenticatedServerReadiness: the manager's readiness probe
// completes a handshake with its own certificate, even with names pinned,
// and that certificate opens nothing to anyone else.
func TestAuthenticatedServerReadiness(t *testing.T) {
	apiCA := newTestCA(t, "api-ca")
	servingCA := newTestCA(t, "serving-ca")
	file := filepath.Join(t.TempDir(), "client-ca.crt")
	writeFile(t, file, apiCA.pem)
	a, err := NewClientAuth(file, []string{"kube-apiserver-webhook-client"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a, servingCA.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth))
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	s := AuthenticatedServer(webhook.NewServer(webhook.Options{}), a, host, port)
	if err := s.StartedChecker()(nil); err != nil {
		t.Fatalf("readiness probe refused: %v", err)
	}

	// Another process's ClientAuth has a probe CA of its own: its
	// certificate is not this one's.
	other, err := NewClientAuth(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := post(addr, &other.probe, 0); err == nil {
		t.Fatal("another process's probe certificate was accepted")
	}

	// Nothing listens: not ready.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, freePort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	p, _ := strconv.Atoi(freePort)
	if err := AuthenticatedServer(webhook.NewServer(webhook.Options{}), a, "127.0.0.1", p).StartedChecker()(nil); err == nil {
		t.Fatal("readiness passed with no server")
	}
	_ = os.Remove(file)
}
