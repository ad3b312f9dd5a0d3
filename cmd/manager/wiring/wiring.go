// Package wiring wires loopguard's parts into a controller-runtime manager:
// the policy index, the admission webhooks, the controllers and the health
// checks. The manager binary and the test control plane (test/testenv) both
// call it, so the tests run exactly what ships. It lives under cmd/manager,
// above the webhooks and controllers it assembles: nothing under internal/
// may import them (test/layers).
package wiring

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/webhooks"
)

// Options configure Setup.
type Options struct {
	// AuditInterval is the period of the full re-audit of every policy.
	AuditInterval time.Duration
	// ClusterPolicyBatchPeriod: controllers.Options'; 0 is
	// app.ClusterPolicyBatchPeriod, negative is none.
	ClusterPolicyBatchPeriod time.Duration
	// Registration, when set, makes the manager register its own webhooks
	// (controllers/webhookconfig_controller.go) once its webhook server
	// serves; Serving is filled in here.
	Registration *controllers.WebhookRegistration
}

// Setup registers the policy index, the admission webhook, the
// controllers and the health and readiness checks with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) (*policyindex.Index, error) {
	metrics.Register()
	index := policyindex.New()
	// Pods by IP and EndpointSlices by address, cluster-wide: an address
	// in any namespace is judged by its pod's policies.
	if err := addrindex.Register(ctx, mgr.GetCache()); err != nil {
		return nil, fmt.Errorf("failed to set up the address indexes: %w", err)
	}
	if err := policyindex.Register(ctx, mgr.GetCache(), index, ctrl.Log.WithName("policyindex")); err != nil {
		return nil, fmt.Errorf("failed to set up the policy index: %w", err)
	}
	// The hot path (every pod, workload and Service write) decodes each
	// review once (webhooks.ReviewHandler); the port-forward guard, rarely
	// called, keeps controller-runtime's webhook.Admission.
	admissionLog := ctrl.Log.WithName("admission")
	// A namespace the index has not seen yet is read from the API server.
	liveLabels := webhooks.LiveNamespaceLabels(mgr.GetAPIReader())
	mgr.GetWebhookServer().Register(webhooks.Path, &webhooks.ReviewHandler{Log: admissionLog, Handler: &webhooks.ExposureValidator{
		Index: index, Reader: mgr.GetCache(), Namespaces: liveLabels, Log: admissionLog,
	}})
	mgr.GetWebhookServer().Register(webhooks.PortForwardPath, &webhook.Admission{Handler: &webhooks.AccessGuard{
		Index: index, Reader: mgr.GetCache(), Namespaces: liveLabels, Recorder: mgr.GetEventRecorder("loopguard-admission"), Log: ctrl.Log.WithName("access"),
	}})
	batch := opts.ClusterPolicyBatchPeriod
	if batch == 0 {
		batch = app.ClusterPolicyBatchPeriod
	}
	copts := controllers.Options{AuditInterval: opts.AuditInterval, Index: index, ClusterPolicyBatchPeriod: max(batch, 0)}
	reg := opts.Registration
	if reg != nil {
		reg.View = controllers.NewRegistrationView()
		copts.Registration = reg.View
	}
	if err := controllers.Setup(mgr, copts); err != nil {
		return nil, fmt.Errorf("failed to set up controllers: %w", err)
	}
	if reg != nil {
		started := mgr.GetWebhookServer().StartedChecker()
		reg.Serving = func() error { return started(nil) }
		if err := controllers.SetupWebhookRegistration(mgr, *reg); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("failed to add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, fmt.Errorf("failed to add webhook ready check: %w", err)
	}
	if err := mgr.AddReadyzCheck("policies", policyindex.ReadyCheck(index)); err != nil {
		return nil, fmt.Errorf("failed to add policy index ready check: %w", err)
	}
	return index, nil
}
