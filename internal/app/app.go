// Package app wires loopguard's parts into a controller-runtime manager. The
// manager binary and the integration tests both call it, so the tests run
// exactly what ships.
package app

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	anpv1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/slim"
	"github.com/loopguard/loopguard/webhooks"
)

// Scheme returns the scheme with the built-in kinds and loopguard's API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(openreportsv1alpha1.AddToScheme(s))
	utilruntime.Must(anpv1alpha1.AddToScheme(s))
	return s
}

// CacheOptions trims what the informers keep: managedFields everywhere and,
// for pods, all but what the rules read.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: slim.StripManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Transform: slim.Pod},
			// Every slice: the audit judges hand-written ones (and those
			// mirrored from hand-written Endpoints), and only the
			// Service a slice claims tells them from the EndpointSlice
			// controller's (rules.ControllerWrittenSlice), never its
			// managed-by label, which anyone may write.
			&discoveryv1.EndpointSlice{}: {Transform: slim.EndpointSlice},
		},
	}
}

// Options configure Setup.
type Options struct {
	// AuditInterval is the period of the full re-audit of every policy.
	AuditInterval time.Duration
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
	if err := addrindex.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("failed to set up the address indexes: %w", err)
	}
	if err := policyindex.Register(ctx, mgr.GetCache(), index, ctrl.Log.WithName("policyindex")); err != nil {
		return nil, fmt.Errorf("failed to set up the policy index: %w", err)
	}
	// The hot path (every pod, workload and Service write) decodes each
	// review once (webhooks.ReviewHandler); the port-forward guard, rarely
	// called, keeps controller-runtime's webhook.Admission.
	admissionLog := ctrl.Log.WithName("admission")
	mgr.GetWebhookServer().Register(webhooks.Path, &webhooks.ReviewHandler{Log: admissionLog, Handler: &webhooks.ExposureValidator{
		Index: index, Reader: mgr.GetCache(), Log: admissionLog,
	}})
	mgr.GetWebhookServer().Register(webhooks.PortForwardPath, &webhook.Admission{Handler: &webhooks.AccessGuard{
		Index: index, Reader: mgr.GetCache(), Recorder: mgr.GetEventRecorder("loopguard-admission"), Log: ctrl.Log.WithName("access"),
	}})
	if err := controllers.Setup(mgr, controllers.Options{AuditInterval: opts.AuditInterval, Index: index}); err != nil {
		return nil, fmt.Errorf("failed to set up controllers: %w", err)
	}
	if reg := opts.Registration; reg != nil {
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
