package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

func pair(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func secret(cert, key []byte) *corev1.Secret {
	s := &corev1.Secret{}
	s.Namespace, s.Name = "loopguard-system", "loopguard-webhook-server-cert"
	if cert != nil {
		s.Data = map[string][]byte{CertName: cert, KeyName: key, CAName: cert}
	}
	return s
}

func TestSyncerWritesValidPairsOnly(t *testing.T) {
	dir := t.TempDir()
	s := &syncer{opts: Options{CertDir: dir}, written: make(chan struct{})}

	// Empty (not filled yet, or emptied for a rotation): nothing written.
	if err := s.write(secret(nil, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, CertName)); !os.IsNotExist(err) {
		t.Fatalf("an empty Secret wrote files: %v", err)
	}
	select {
	case <-s.written:
		t.Fatal("FilesWritten closed without files")
	default:
	}

	c1, k1 := pair(t, "one")
	if err := s.write(secret(c1, k1)); err != nil {
		t.Fatal(err)
	}
	<-s.written
	assertFile(t, filepath.Join(dir, CertName), c1)
	assertFile(t, filepath.Join(dir, KeyName), k1)

	// A mismatched pair is refused and the last good one stays.
	c2, k2 := pair(t, "two")
	if err := s.write(secret(c2, k1)); err == nil {
		t.Fatal("a certificate with another key was accepted")
	}
	assertFile(t, filepath.Join(dir, CertName), c1)

	// A new pair replaces the files (and closing twice does not panic).
	if err := s.write(secret(c2, k2)); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, CertName), c2)
	assertFile(t, filepath.Join(dir, KeyName), k2)
	if fi, _ := os.Stat(filepath.Join(dir, KeyName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o, want 600", fi.Mode().Perm())
	}
	// Emptied again: the last pair keeps being served.
	if err := s.write(secret(nil, nil)); err != nil {
		t.Fatal(err)
	}
	assertFile(t, filepath.Join(dir, CertName), c2)
	left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s has other content", filepath.Base(path))
	}
}

func TestOptions(t *testing.T) {
	o := Options{Namespace: "loopguard-system", SecretName: "s", ServiceName: "loopguard-webhook-service",
		WebhookConfigName: "w", CertDir: "/tmp/x"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if got := o.DNSName(); got != "loopguard-webhook-service.loopguard-system.svc" {
		t.Errorf("DNSName %q", got)
	}
	o.Namespace = ""
	if err := o.validate(); err == nil {
		t.Error("no namespace accepted")
	}
}

type fakeServer struct {
	webhook.Server
	started chan struct{}
}

func (f *fakeServer) Start(ctx context.Context) error { close(f.started); <-ctx.Done(); return nil }

func TestGateServerWaitsForTheCertificate(t *testing.T) {
	inner := &fakeServer{started: make(chan struct{})}
	ready := make(chan struct{})
	g := GateServer(inner, ready, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	select {
	case <-inner.started:
		t.Fatal("the webhook server started before the certificate existed")
	case <-time.After(100 * time.Millisecond):
	}
	close(ready)
	select {
	case <-inner.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook server did not start once the certificate existed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Stopped before the certificate came: returns without starting.
	inner2 := &fakeServer{started: make(chan struct{})}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := GateServer(inner2, make(chan struct{}), time.Second).Start(ctx2); err != nil {
		t.Fatal(err)
	}
}

func TestReadyCheck(t *testing.T) {
	r := &Rotation{Ready: make(chan struct{})}
	req, _ := http.NewRequest(http.MethodGet, "/readyz", nil)
	if err := r.ReadyCheck()(req); err == nil {
		t.Error("ready before the certificate")
	}
	close(r.Ready)
	if err := r.ReadyCheck()(req); err != nil {
		t.Error(err)
	}
}

type recordingServer struct {
	webhook.Server
	handlers         map[string]http.Handler
	started, stopped chan struct{}
}

func (f *recordingServer) Register(path string, h http.Handler) { f.handlers[path] = h }
func (f *recordingServer) Start(ctx context.Context) error {
	close(f.started)
	<-ctx.Done()
	close(f.stopped)
	return nil
}

// TestGateServerDrainsBeforeStopping: after the stop signal, responses say
// "Connection: close" while the inner server still runs; the inner server
// stops when the drain period ends, not before. The test ends the period
// itself (no clock).
func TestGateServerDrainsBeforeStopping(t *testing.T) {
	inner := &recordingServer{handlers: map[string]http.Handler{}, started: make(chan struct{}), stopped: make(chan struct{})}
	ready := make(chan struct{})
	close(ready)
	g := GateServer(inner, ready, 300*time.Millisecond).(*gatedServer)
	drained := make(chan time.Time)
	var asked time.Duration
	g.after = func(d time.Duration) <-chan time.Time { asked = d; return drained }
	g.Register("/validate", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	serve := func() string {
		rec := httptest.NewRecorder()
		inner.handlers["/validate"].ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", nil))
		return rec.Header().Get("Connection")
	}
	if got := serve(); got != "" {
		t.Fatalf("Connection %q before shutdown, want keep-alive", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	<-inner.started
	cancel()
	// Draining starts after the signal: wait for the first "close".
	for serve() != "close" {
		select {
		case <-inner.stopped:
			t.Fatal("the inner server stopped without draining")
		case <-time.After(time.Millisecond): // poll
		}
	}
	select {
	case <-inner.stopped:
		t.Fatal("the inner server stopped before the drain period ended")
	default:
	}
	if got := serve(); got != "close" {
		t.Errorf("Connection %q while draining, want close", got)
	}
	drained <- time.Now() // the drain period ends
	<-inner.stopped
	if asked != 300*time.Millisecond {
		t.Errorf("drained for %s, want the configured 300ms", asked)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
