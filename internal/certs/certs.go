// Package certs gives the manager its own webhook serving certificate, with
// no cert-manager: github.com/open-policy-agent/cert-controller (as
// Gatekeeper uses it) generates a CA and a serving certificate into a
// Secret, renews them before they expire and keeps the caBundle of the
// ValidatingWebhookConfiguration equal to the CA.
//
// Every replica runs the rotator (RequireLeaderElection false, like
// Gatekeeper): every replica serves the webhook, so every replica must
// become ready without waiting for an election; concurrent writers are
// resolved by the API server's optimistic concurrency (the loser re-reads a
// valid Secret and leaves it).
//
// The serving files are not a Secret volume: the kubelet refreshes those
// only on its periodic pod sync (up to a minute or more), during which the
// API server would already trust a new CA that the pod does not yet serve.
// Instead each replica watches that one Secret and writes tls.crt / tls.key
// into its (emptyDir) certificate directory within milliseconds of a
// change; controller-runtime's webhook server watches those files and
// serves the new pair without a restart. The webhook server itself starts
// only once the files exist (see GateServer), so a first install does not
// crash-loop, and /readyz stays false until then.
package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Names of the Secret's keys (cert-controller's and cert-manager's).
const (
	CertName = "tls.crt"
	KeyName  = "tls.key"
	CAName   = "ca.crt"
)

// Options name what the rotator manages.
type Options struct {
	Namespace         string // the manager's namespace, where the Secret lives
	SecretName        string // Secret the rotator fills: ca.crt, ca.key, tls.crt, tls.key
	ServiceName       string // the webhook Service: the certificate is for <service>.<namespace>.svc
	WebhookConfigName string // ValidatingWebhookConfiguration whose caBundle is kept current
	CertDir           string // where the webhook server reads tls.crt and tls.key (writable)
}

// DNSName is the name the API server dials: <service>.<namespace>.svc.
func (o Options) DNSName() string { return o.ServiceName + "." + o.Namespace + ".svc" }

func (o Options) validate() error {
	for n, v := range map[string]string{"namespace": o.Namespace, "secret name": o.SecretName,
		"webhook service name": o.ServiceName, "webhook configuration name": o.WebhookConfigName, "certificate directory": o.CertDir} {
		if v == "" {
			return fmt.Errorf("certificate rotation needs a %s", n)
		}
	}
	return nil
}

// Rotation is what Setup returns: readiness checks and the gate of the
// webhook server.
type Rotation struct {
	// Ready is closed once the certificate is on disk and the caBundle
	// injected (cert-controller's IsReady).
	Ready chan struct{}
	// FilesWritten is closed once tls.crt and tls.key exist in CertDir.
	FilesWritten chan struct{}
}

// ReadyCheck fails until the certificate is in place and the CA injected.
func (r *Rotation) ReadyCheck() healthz.Checker {
	return func(*http.Request) error {
		select {
		case <-r.Ready:
			return nil
		default:
			return fmt.Errorf("webhook certificate not in place yet")
		}
	}
}

// Setup adds the rotator and the Secret-to-files syncer to mgr. Call it
// before mgr.Start; wrap the webhook server with GateServer(…,
// r.FilesWritten) when creating the manager.
func Setup(mgr manager.Manager, o Options) (*Rotation, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.CertDir, 0o700); err != nil {
		return nil, fmt.Errorf("certificate directory: %w", err)
	}
	r := &Rotation{Ready: make(chan struct{}), FilesWritten: make(chan struct{})}
	err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName},
		CertDir:        o.CertDir,
		CAName:         "loopguard-webhook-ca",
		CAOrganization: "loopguard",
		DNSName:        o.DNSName(),
		IsReady:        r.Ready,
		Webhooks:       []rotator.WebhookInfo{{Name: o.WebhookConfigName, Type: rotator.Validating}},
		FieldOwner:     "loopguard-cert-rotator",
		// Every replica serves the webhook, so every replica runs it.
		RequireLeaderElection: false,
		// cert-controller's defaults: CA 10 years, serving cert 1 year,
		// renewed 90 days before expiry, checked every 12 hours.
	})
	if err != nil {
		return nil, fmt.Errorf("adding the certificate rotator: %w", err)
	}
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("certificate syncer client: %w", err)
	}
	s := &syncer{opts: o, client: cs, written: r.FilesWritten}
	if err := mgr.Add(s); err != nil {
		return nil, err
	}
	return r, nil
}

// syncer copies the Secret's serving pair into CertDir whenever it changes.
type syncer struct {
	opts    Options
	client  kubernetes.Interface
	written chan struct{}
	once    sync.Once
	last    []byte
}

// NeedLeaderElection: every replica serves, every replica needs the files.
func (s *syncer) NeedLeaderElection() bool { return false }

func (s *syncer) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("cert-sync")
	if log.GetSink() == nil {
		log = logf.Log.WithName("cert-sync")
	}
	sel := fields.OneTermEqualSelector("metadata.name", s.opts.SecretName).String()
	lw := toolscache.NewFilteredListWatchFromClient(s.client.CoreV1().RESTClient(), "secrets", s.opts.Namespace,
		func(o *metav1.ListOptions) { o.FieldSelector = sel })
	inf := toolscache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, toolscache.Indexers{})
	handle := func(obj any) {
		sec, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		if err := s.write(sec); err != nil {
			log.Error(err, "writing the serving certificate", "dir", s.opts.CertDir)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, n any) { handle(n) },
		// Deleted or emptied: keep serving the last pair until a new one
		// arrives (the rotator regenerates it).
	}); err != nil {
		return err
	}
	log.Info("watching the webhook certificate Secret", "secret", s.opts.Namespace+"/"+s.opts.SecretName, "dir", s.opts.CertDir)
	inf.Run(ctx.Done())
	return nil
}

// write writes tls.key then tls.crt (each atomically, by rename) when the
// Secret holds a valid pair that differs from the last one written.
func (s *syncer) write(sec *corev1.Secret) error {
	cert, key := sec.Data[CertName], sec.Data[KeyName]
	if len(cert) == 0 || len(key) == 0 {
		return nil // not filled yet, or being regenerated
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return fmt.Errorf("secret %s/%s: invalid pair: %w", sec.Namespace, sec.Name, err)
	}
	sum := append(append([]byte{}, cert...), key...)
	if bytes.Equal(sum, s.last) {
		return nil
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyName, key}, {CertName, cert}, {CAName, sec.Data[CAName]}} {
		if err := writeAtomic(filepath.Join(s.opts.CertDir, f.name), f.data); err != nil {
			return err
		}
	}
	s.last = sum
	logf.Log.WithName("cert-sync").Info("serving certificate written", "dir", s.opts.CertDir, "resourceVersion", sec.ResourceVersion)
	s.once.Do(func() { close(s.written) })
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// GateServer wraps a webhook server so that it starts only once ready is
// closed (the certificate files exist): controller-runtime's server reads
// them when it starts and fails without them. Until then its
// StartedChecker, and so /readyz, fails.
//
// On shutdown it drains for drain before stopping the server: the API
// server keeps idle keep-alive connections to every replica, and a
// connection closed under it fails that admission request (a POST is not
// retried). While draining, every response carries "Connection: close", so
// the API server stops reusing this replica's connections and dials the
// Service again (reaching the replicas that stay) before this one stops.
func GateServer(inner webhook.Server, ready <-chan struct{}, drain time.Duration) webhook.Server {
	return &gatedServer{Server: inner, ready: ready, drain: drain, after: time.After}
}

type gatedServer struct {
	webhook.Server
	ready    <-chan struct{}
	drain    time.Duration
	draining atomic.Bool
	after    func(time.Duration) <-chan time.Time // time.After; tests end the drain themselves
}

// Register wraps hook so that, while draining, its connection is closed
// after the response.
func (g *gatedServer) Register(path string, hook http.Handler) {
	g.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		hook.ServeHTTP(w, r)
	}))
}

func (g *gatedServer) Start(ctx context.Context) error {
	log := logf.Log.WithName("webhook-gate")
	t0 := time.Now()
	select {
	case <-g.ready:
	case <-ctx.Done():
		return nil
	}
	if d := time.Since(t0); d > time.Millisecond {
		log.Info("serving certificate present: starting the webhook server", "waited", d.Round(time.Millisecond).String())
	}
	inner, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-inner.Done():
			return
		}
		if g.drain > 0 {
			g.draining.Store(true)
			log.Info("draining the webhook server's connections before stopping it", "for", g.drain.String())
			select {
			case <-g.after(g.drain):
			case <-inner.Done():
			}
		}
		stop()
	}()
	return g.Server.Start(inner)
}
