// Package testenv starts what integration tests run against: a real etcd and
// kube-apiserver (controller-runtime's envtest, fed with the binaries
// hack/build-k8s.sh builds), loopguard's CRDs and webhook configuration,
// optionally a real kube-controller-manager (garbage collection, namespace
// deletion) and loopguard's manager wired exactly as cmd/manager wires it.
// It never skips: a test that cannot get a control plane fails.
package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loopguard/loopguard/cmd/manager/wiring"
	webhookmanifests "github.com/loopguard/loopguard/config/webhook"
	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/certs"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/webhookconfig"
	"go.uber.org/zap/zapcore"
)

// Options choose what runs besides etcd and kube-apiserver.
type Options struct {
	// Manager runs loopguard's manager (webhook and controllers).
	Manager bool
	// ControllerManager runs kube-controller-manager's garbage collector
	// and namespace controllers.
	ControllerManager bool
	// AuditInterval for the manager; default 1h.
	AuditInterval time.Duration
	// ExtraCRDs are more CRD directories to install, e.g. OpenReportsCRDs.
	ExtraCRDs []string
	// WebhookClientAuth gives the API server a client certificate for the
	// webhook (an AdmissionConfiguration) and runs the manager's webhook
	// with its CA as --webhook-client-ca would (docs/webhook-auth.md).
	WebhookClientAuth bool
}

// WebhookConfigName is the ValidatingWebhookConfiguration the manager
// registers its scoped webhooks into (controllers/webhookconfig_controller.go),
// installed empty as config/webhook does: tests meet the registration a
// deployed manager makes, never a static cluster-wide configuration.
const WebhookConfigName = "loopguard-validating-webhook-configuration"

// ManagerNamespace is the namespace the registration excludes as the
// manager's own, as config/default does.
const ManagerNamespace = "loopguard-system"

// Env is a running test control plane.
type Env struct {
	// Config is an admin's rest.Config.
	Config *rest.Config
	// Client is an uncached admin client.
	Client client.Client
	// Index is the manager's policy index, when the manager runs.
	Index *policyindex.Index
	// WebhookAddr is the manager's webhook address (host:port), when the
	// manager runs.
	WebhookAddr string
	// ClientAuth is the webhook's client authentication, with
	// Options.WebhookClientAuth.
	ClientAuth *certs.ClientAuth

	env    *envtest.Environment
	cancel context.CancelFunc
	done   chan error
	kcm    *exec.Cmd
}

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Assets returns the directory of the control plane binaries:
// KUBEBUILDER_ASSETS, or bin/k8s/current in the repository.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "k8s", "current")
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("control plane binary %s not found in %s (run `make k8s`): %w", b, dir, err)
		}
	}
	return dir, nil
}

// OpenReportsCRDs returns the directory of the OpenReports CRDs, shipped in
// the github.com/openreports/reports-api module loopguard depends on.
func OpenReportsCRDs() (string, error) {
	return moduleDir("github.com/openreports/reports-api", "config", "crd")
}

// AdminNetworkPolicyCRDs returns the directory of the AdminNetworkPolicy
// CRDs (standard channel), shipped in the sigs.k8s.io/network-policy-api
// module loopguard depends on.
func AdminNetworkPolicyCRDs() (string, error) {
	return moduleDir("sigs.k8s.io/network-policy-api", "config", "crd", "standard")
}

// moduleDir is a directory inside a module of loopguard's build list.
func moduleDir(module string, elem ...string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("failed to locate module %s: %w", module, err)
	}
	return filepath.Join(append([]string{strings.TrimSpace(string(out))}, elem...)...), nil
}

// Start starts the control plane and whatever opts ask for.
func Start(opts Options) (*Env, error) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	root := RepoRoot()
	e := &Env{env: &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     append([]string{filepath.Join(root, "config", "crd", "bases")}, opts.ExtraCRDs...),
		ErrorIfCRDPathMissing: true,
	}}
	if opts.Manager {
		// Without a manager nothing serves the webhook, and with
		// failurePolicy Fail the API server would refuse every pod.
		e.env.WebhookInstallOptions.ValidatingWebhooks = []*admissionregistrationv1.ValidatingWebhookConfiguration{
			{ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigName}}}
	}
	if opts.WebhookClientAuth {
		if !opts.Manager {
			return nil, errors.New("WebhookClientAuth needs Manager")
		}
		if err := e.webhookClientAuth(); err != nil {
			return nil, err
		}
	}
	if e.Config, err = e.env.Start(); err != nil {
		return nil, fmt.Errorf("failed to start etcd and kube-apiserver from %s: %w", assets, err)
	}
	if e.Client, err = client.New(e.Config, client.Options{Scheme: app.Scheme()}); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	if opts.ControllerManager {
		if err := e.startControllerManager(assets); err != nil {
			return nil, errors.Join(err, e.Stop())
		}
	}
	if opts.Manager {
		if err := e.startManager(opts); err != nil {
			return nil, errors.Join(err, e.Stop())
		}
	}
	return e, nil
}

func zapLevel() zapcore.Level {
	if v, _ := strconv.Atoi(os.Getenv("LOOPGUARD_TEST_VERBOSITY")); v > 0 {
		return zapcore.Level(-v)
	}
	return zapcore.WarnLevel // warnings and errors only
}

func (e *Env) startManager(opts Options) error {
	wh := e.env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 app.Scheme(),
		Cache:                  app.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          e.webhookServer(),
		Controller:             config.Controller{MaxConcurrentReconciles: app.ConcurrentReconciles},
	})
	if err != nil {
		return fmt.Errorf("failed to create manager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if opts.AuditInterval == 0 {
		opts.AuditInterval = time.Hour
	}
	if e.ClientAuth != nil {
		if err := mgr.Add(e.ClientAuth); err != nil {
			return err
		}
	}
	templates, err := webhookmanifests.Templates()
	if err != nil {
		return err
	}
	url := "https://" + net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort))
	ca := wh.LocalServingCAData
	reg := &controllers.WebhookRegistration{
		Name: WebhookConfigName,
		Options: webhookconfig.Options{Templates: templates,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Excluded:     []string{"kube-system", "kube-public", "kube-node-lease", ManagerNamespace}},
		CABundle: func() ([]byte, error) { return ca, nil },
	}
	if e.Index, err = wiring.Setup(ctx, mgr, wiring.Options{AuditInterval: opts.AuditInterval, Registration: reg}); err != nil {
		return err
	}
	e.done = make(chan error, 1)
	go func() { e.done <- mgr.Start(ctx) }()

	// Ready means: the webhook answers TLS and the policy index synced.
	addr := net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort))
	e.WebhookAddr = addr
	probe := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness probe only
	if e.ClientAuth != nil {
		probe = e.ClientAuth.ProbeTLS()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, probe)
		if err == nil {
			_ = conn.Close()
			if e.Index.Synced() {
				return nil
			}
		}
		select {
		case err := <-e.done:
			return fmt.Errorf("manager exited while starting: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("manager not ready after 60s (webhook at %s: %v, index synced: %v)", addr, err, e.Index.Synced())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startControllerManager runs kube-controller-manager with the controllers
// tests rely on, as a system:masters user.
func (e *Env) startControllerManager(assets string) error {
	bin := filepath.Join(assets, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("kube-controller-manager not found in %s (run `make k8s`): %w", assets, err)
	}
	user, err := e.env.AddUser(envtest.User{Name: "kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("failed to create a user for kube-controller-manager: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to write kube-controller-manager's kubeconfig: %w", err)
	}
	dir, err := os.MkdirTemp("", "loopguard-kcm-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return err
	}
	e.kcm = exec.Command(bin,
		"--kubeconfig="+path,
		"--controllers=garbagecollector,namespace",
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
	)
	log, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	e.kcm.Stdout, e.kcm.Stderr = log, log
	if err := e.kcm.Start(); err != nil {
		return fmt.Errorf("failed to start kube-controller-manager: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kube-controller-manager running, log: %s\n", log.Name())
	return nil
}

// Stop stops everything Start started.
func (e *Env) Stop() error {
	if e.cancel != nil {
		e.cancel()
		select {
		case <-e.done:
		case <-time.After(30 * time.Second):
		}
	}
	if e.kcm != nil && e.kcm.Process != nil {
		_ = e.kcm.Process.Kill()
		_, _ = e.kcm.Process.Wait()
	}
	return e.env.Stop()
}

// AddUser creates a user with a client certificate and returns its config.
func (e *Env) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// Main is a package's TestMain: it starts a control plane with opts into
// *env, runs the tests and stops it. A control plane that cannot start
// fails the whole run loudly (never a silent skip).
func Main(m *testing.M, opts Options, env **Env) {
	e, err := Start(opts)
	// The webhook's port is chosen (listen on :0, close) before the API
	// server starts, since its admission configuration names it; another
	// test binary running in parallel can take it before the manager binds
	// it. That race, and only it, starts the control plane again.
	for try := 1; err != nil && try < 3 && strings.Contains(err.Error(), "address already in use"); try++ {
		fmt.Fprintf(os.Stderr, "the test control plane lost a port race (%v): starting it again\n", err)
		e, err = Start(opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the test control plane: %v\n", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "warning: stopping the control plane: %v\n", err)
	}
	os.Exit(code)
}
