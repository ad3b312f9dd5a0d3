package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// WebhookConfigControllerName names the controller that registers the
// webhooks.
const WebhookConfigControllerName = "webhookconfig"

// WebhookRegistration configures the webhook registration controller.
type WebhookRegistration struct {
	// Name of the ValidatingWebhookConfiguration. The install creates it
	// with no webhooks; the controller fills it, and never creates it (a
	// manager still running while loopguard is uninstalled must not leave
	// one behind).
	Name string
	// Templates, ClientConfig (without CABundle), Excluded and the bounds:
	// webhookconfig.Options.
	Options webhookconfig.Options
	// CABundle returns the CA the API server must trust (read on every
	// reconcile, so a rotated CA is registered).
	CABundle func() ([]byte, error)
	// Serving returns nil once this replica's webhook server completes a
	// TLS handshake (its StartedChecker): nothing is registered before,
	// so a manager that never serves blocks nothing.
	Serving func() error
	// View, when set, is shared with the policy reconcilers
	// (controllers.Options.Registration), which then carry the Enforced
	// condition in their own status writes.
	View *RegistrationView
}

// fieldOwner is the field manager of the registration's writes.
const webhookConfigFieldOwner = client.FieldOwner("loopguard-webhook-registration")

// notServingRetry is how soon the controller looks again at a webhook
// server that does not serve yet; caRefresh how often it re-reads the CA.
const (
	notServingRetry = 500 * time.Millisecond
	caRefresh       = 5 * time.Minute
)

// WebhookConfigReconciler keeps the ValidatingWebhookConfiguration equal to
// webhookconfig.Desired of the policies, then sets each policy's Enforced
// condition (webhookconfig_status.go) from what the written configuration
// covers.
type WebhookConfigReconciler struct {
	client client.Client
	reader client.Reader
	reg    WebhookRegistration
	// last is the registration last found written (one reconcile at a
	// time: the controller has a single key).
	last registrationMemo
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;update;patch,resourceNames=loopguard-validating-webhook-configuration
// +kubebuilder:rbac:groups=loopguard.io,resources=loopbackservices;clusterloopbackservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=loopguard.io,resources=loopbackservices/status;clusterloopbackservices/status,verbs=get;patch;update

// Reconcile registers the webhooks the policies need and reports which
// policies the registration covers.
func (r *WebhookConfigReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	policies, objs, err := r.policies(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reg.Serving(); err != nil {
		log.V(1).Info("the webhook server does not serve yet: nothing registered", "reason", err.Error())
		return ctrl.Result{RequeueAfter: notServingRetry}, r.setPending(ctx, objs, v1alpha1.ReasonWebhookPending,
			"loopguard registers its webhooks once its webhook server serves; it does not serve yet")
	}
	ca, err := r.reg.CABundle()
	if err != nil {
		return ctrl.Result{}, errors.Join(fmt.Errorf("failed to read the webhook CA: %w", err),
			r.setPending(ctx, objs, v1alpha1.ReasonWebhookPending, "loopguard cannot read its webhook CA: "+err.Error()))
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.reader.Get(ctx, types.NamespacedName{Name: r.reg.Name}, &vwc); err != nil || !vwc.DeletionTimestamp.IsZero() {
		if err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// Never created here: the install owns the object's life.
		log.Info("the webhook configuration does not exist: nothing registered (re-apply the install manifests)", "name", r.reg.Name)
		return ctrl.Result{}, r.setPending(ctx, objs, v1alpha1.ReasonWebhookConfigurationMissing, fmt.Sprintf(
			"the ValidatingWebhookConfiguration %s that loopguard's install creates does not exist (uninstalled, or deleted): nothing is judged at admission; re-apply the install manifests", r.reg.Name))
	}
	inputs := registrationInputs(policies, ca)
	coverage, written := r.last.reuse(inputs, vwc.ResourceVersion)
	if !written {
		o := r.reg.Options
		o.ClientConfig = *o.ClientConfig.DeepCopy()
		o.ClientConfig.CABundle = ca
		desired, err := webhookconfig.Desired(policies, o)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !equality.Semantic.DeepEqual(vwc.Webhooks, desired.Webhooks) {
			vwc.Webhooks = desired.Webhooks
			// An update at the cached resourceVersion: a conflict (the
			// certificate rotator, an install re-applied) retries on the
			// fresh object; NotFound never creates it.
			if err := r.client.Update(ctx, &vwc, webhookConfigFieldOwner); err != nil {
				if apierrors.IsConflict(err) {
					return ctrl.Result{RequeueAfter: staleCacheRetry}, nil
				}
				return ctrl.Result{}, fmt.Errorf("failed to update ValidatingWebhookConfiguration %s: %w", r.reg.Name, err)
			}
			log.Info("webhook registration updated", "name", r.reg.Name, "webhooks", len(desired.Webhooks), "mode", desired.Mode, "why", desired.Why, "policies", len(policies))
			// Kept only once the stored configuration is read back and
			// found equal (the watch event of this write reconciles
			// again), not on the word of the write.
			r.last = registrationMemo{}
		} else {
			r.last.keep(inputs, vwc.ResourceVersion, desired.Coverage)
		}
		coverage = desired.Coverage
	}
	// Only now, with the configuration written, does a policy report
	// what it covers.
	if err := r.setEnforced(ctx, objs, coverage); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: staleCacheRetry}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: caRefresh}, nil
}

// enforcedObject is a policy whose status this controller writes.
type enforcedObject interface {
	client.Object
	PolicyStatus() *v1alpha1.LoopbackServiceStatus
}

// policies lists both kinds from the cache.
func (r *WebhookConfigReconciler) policies(ctx context.Context) ([]webhookconfig.Policy, map[webhookconfig.Key]enforcedObject, error) {
	// As the cache holds them, without copies: every policy is read on
	// each reconcile (10,020 deep copies were a tenth of the manager's CPU
	// at 150,000 pods, and the copies into a List's Items still 4%), and
	// patchEnforced copies the few it writes.
	lbs, err := clusterindex.Objects(ctx, r.reader, lbsExemplar, newLBSList, "")
	if err != nil {
		return nil, nil, err
	}
	clbs, err := clusterindex.Objects(ctx, r.reader, clbsExemplar, newCLBSList, "")
	if err != nil {
		return nil, nil, err
	}
	out := make([]webhookconfig.Policy, 0, len(lbs)+len(clbs))
	objs := make(map[webhookconfig.Key]enforcedObject, cap(out))
	for _, o := range lbs {
		p, ok := o.(*v1alpha1.LoopbackService)
		if !ok || !p.DeletionTimestamp.IsZero() {
			continue // on its way out: no longer registered (its tenant may delete it anyway)
		}
		out = append(out, webhookconfig.Policy{Namespace: p.Namespace, Name: p.Name})
		objs[webhookconfig.Key{Namespace: p.Namespace, Name: p.Name}] = p
	}
	for _, o := range clbs {
		p, ok := o.(*v1alpha1.ClusterLoopbackService)
		if !ok {
			continue
		}
		out = append(out, webhookconfig.Policy{Name: p.Name, NamespaceSelector: &p.Spec.NamespaceSelector})
		objs[webhookconfig.Key{Name: p.Name}] = p
	}
	return out, objs, nil
}

// registrationBatchPeriod folds a burst of policy events into one
// registration reconcile (batched): at most this much is added to the
// time a new policy takes to report Enforced.
const registrationBatchPeriod = 500 * time.Millisecond

// SetupWebhookRegistration registers the controller with mgr.
func SetupWebhookRegistration(mgr ctrl.Manager, reg WebhookRegistration) error {
	if reg.Name == "" || reg.CABundle == nil || reg.Serving == nil || len(reg.Options.Templates) == 0 {
		return errors.New("webhook registration: name, templates, CA bundle and serving check are required")
	}
	r := &WebhookConfigReconciler{client: mgr.GetClient(), reader: mgr.GetCache(), reg: reg}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: reg.Name}}}
	})
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == reg.Name })
	// Policy events are batched (the configuration itself is repaired at
	// once): each reconcile reads every policy, and while thousands are
	// created their events kept it running back to back, a third of the
	// manager's CPU at 10,020 policies. A policy reports Enforced only
	// once a reconcile after it covers it, batched or not.
	policies := batched(one, registrationBatchPeriod)
	err := ctrl.NewControllerManagedBy(mgr).Named(WebhookConfigControllerName).
		WatchesRawSource(startSource(reg.Name)).
		Watches(&admissionregistrationv1.ValidatingWebhookConfiguration{}, one, builder.WithPredicates(ours)).
		Watches(&v1alpha1.LoopbackService{}, policies, builder.WithPredicates(registrationRelevant{})).
		Watches(&v1alpha1.ClusterLoopbackService{}, policies, builder.WithPredicates(registrationRelevant{})).
		Complete(r)
	if err != nil {
		return fmt.Errorf("failed to set up %s controller: %w", WebhookConfigControllerName, err)
	}
	return nil
}

// registrationRelevant passes the policy events that can change the
// registration or a policy's Enforced condition: creation, deletion, a new
// generation (a cluster policy's namespaceSelector), and a status write
// that lost or changed the Enforced or Ready condition.
type registrationRelevant struct{ predicate.Funcs }

func (registrationRelevant) Create(event.CreateEvent) bool   { return true }
func (registrationRelevant) Delete(event.DeleteEvent) bool   { return true }
func (registrationRelevant) Generic(event.GenericEvent) bool { return false }
func (registrationRelevant) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(enforcedObject)
	n, ok2 := e.ObjectNew.(enforcedObject)
	if !ok1 || !ok2 || o.GetGeneration() != n.GetGeneration() || o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero() {
		return true
	}
	for _, t := range []string{v1alpha1.ConditionEnforced, v1alpha1.ConditionReady} {
		a, b := meta.FindStatusCondition(o.PolicyStatus().Conditions, t), meta.FindStatusCondition(n.PolicyStatus().Conditions, t)
		if (a == nil) != (b == nil) || a != nil && (a.Status != b.Status || a.Reason != b.Reason) {
			return true
		}
	}
	return false
}
