package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/openreport"
	"github.com/loopguard/loopguard/internal/policyindex"
)

// OpenReportsControllerName names the controller that keeps a namespace's
// OpenReports Report, in logs and metrics.
const OpenReportsControllerName = "openreports"

// ReportName is the name of the Report loopguard keeps in each namespace
// where a policy applies.
const ReportName = "loopguard"

// AnnotationOmittedResults on a Report counts the results its summary
// counts but it does not list (openreport.MaxResults).
const AnnotationOmittedResults = "loopguard.io/omitted-results"

var reportGK = schema.GroupKind{Group: openreportsv1alpha1.GroupName, Kind: "Report"}

// OpenReportsReconciler keeps, per namespace (request name), an OpenReports
// Report with one result per object, policy and rule: what each policy's
// audit found (rules.Audit), the compliant protected pods, the
// NetworkPolicies that re-open a protected port, the listeners beyond
// loopback and the node-mates. It writes only when the content changed,
// only when the Report CRD is installed, and deletes the Report of a
// namespace with no results (its last policy gone).
type OpenReportsReconciler struct {
	client    client.Client
	reader    client.Reader // the cache
	apiReader client.Reader // uncached: Reports are not watched
	api       *reportsAPI
	index     *policyindex.Index
	interval  time.Duration
}

// +kubebuilder:rbac:groups=openreports.io,resources=reports,verbs=get;create;update;delete

// Reconcile implements reconcile.Reconciler for one namespace.
func (r *OpenReportsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !r.api.served.Load() {
		return ctrl.Result{}, nil // OpenReports not installed: status, Events and metrics only
	}
	s := &reportScope{log: ctrl.LoggerFrom(ctx), namespace: req.Name}
	phases := []reportPhase{
		{"gather the namespace's policies", gatherReportPolicies(r.reader, r.index)},
		{"audit the namespace", auditReport(r.reader)},
		{"read the runtime findings", runtimeReport},
	}
	if err := runReportPhases(ctx, s, phases); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.write(ctx, s.namespace, len(s.policies) > 0, openreport.Build(s.results, openreport.MaxResults)); err != nil {
		return ctrl.Result{}, err
	}
	if len(s.policies) == 0 {
		return ctrl.Result{}, nil // no Report to keep; a policy's event brings it back
	}
	// Repairs a Report someone edited: Reports are not watched.
	return ctrl.Result{RequeueAfter: r.interval}, nil
}

// write keeps the namespace's Report, writing only on change; applies says
// a policy applies in the namespace. The name is loopguard's wherever a
// policy applies: a Report of it someone else wrote is replaced (or
// deleted, with no results), and left alone elsewhere.
func (r *OpenReportsReconciler) write(ctx context.Context, namespace string, applies bool, c openreport.Content) error {
	key := client.ObjectKey{Namespace: namespace, Name: ReportName}
	cur := &openreportsv1alpha1.Report{}
	err := r.apiReader.Get(ctx, key, cur)
	exists := err == nil
	if meta.IsNoMatchError(err) {
		r.api.served.Store(false) // uninstalled since the last look
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to get Report %s: %w", key, err)
	}
	takeover := exists && cur.Labels[netpol.LabelManagedBy] != netpol.ManagedBy
	if takeover && !applies {
		return nil // not loopguard's business here
	}
	if takeover {
		// A Report of it written by someone else (a tenant's "all
		// passed") would be read as loopguard's findings: who wrote it is
		// logged, and nothing of it stays.
		ctrl.LoggerFrom(ctx).Info("a Report of loopguard's name was written by someone else; replacing it with loopguard's findings",
			"report", key, "writers", reportWriters(cur))
		metav1.SetMetaDataLabel(&cur.ObjectMeta, netpol.LabelManagedBy, netpol.ManagedBy)
	}
	if len(c.Results) == 0 {
		if exists {
			if err := r.client.Delete(ctx, cur); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("failed to delete Report %s: %w", key, err)
			}
		}
		return nil
	}
	now := metav1.Now()
	openreport.KeepTimestamps(cur.Results, c.Results, metav1.Timestamp{Seconds: now.Unix()})
	omitted := ""
	if c.Omitted > 0 {
		omitted = strconv.Itoa(c.Omitted)
	}
	if !exists {
		want := &openreportsv1alpha1.Report{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ReportName, Labels: map[string]string{netpol.LabelManagedBy: netpol.ManagedBy}},
			Source:     openreport.Source, Summary: c.Summary, Results: c.Results,
		}
		if omitted != "" {
			want.Annotations = map[string]string{AnnotationOmittedResults: omitted}
		}
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("failed to create Report %s: %w", key, err)
		}
		return nil
	}
	// What loopguard never sets, someone else did: a scope narrowing the
	// findings to one object, an owner that could have it collected.
	foreign := cur.Scope != nil || cur.ScopeSelector != nil || cur.Configuration != nil ||
		len(cur.OwnerReferences) > 0 || len(cur.Finalizers) > 0
	if !takeover && !foreign && cur.Source == openreport.Source && cur.Summary == c.Summary && equality.Semantic.DeepEqual(cur.Results, c.Results) &&
		cur.Annotations[AnnotationOmittedResults] == omitted {
		return nil
	}
	cur.Source, cur.Summary, cur.Results = openreport.Source, c.Summary, c.Results
	cur.Scope, cur.ScopeSelector, cur.Configuration = nil, nil, nil
	cur.OwnerReferences, cur.Finalizers = nil, nil
	if omitted != "" {
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, AnnotationOmittedResults, omitted)
	} else {
		delete(cur.Annotations, AnnotationOmittedResults)
	}
	if err := r.client.Update(ctx, cur); err != nil {
		return fmt.Errorf("failed to update Report %s: %w", key, err)
	}
	return nil
}

// openReportsBatchPeriod folds the events of a namespace into one Report
// reconcile (batched).
const openReportsBatchPeriod = 2 * time.Second

// setupOpenReports registers the Report controller. Its watches map each
// change to the namespaces whose Report it can change, through the cache
// and the policy index, never by listing every object.
func setupOpenReports(mgr ctrl.Manager, index *policyindex.Index, interval time.Duration) error {
	api, err := startReportsAPI(mgr, reportGK)
	if err != nil {
		return err
	}
	r := &OpenReportsReconciler{
		client: mgr.GetClient(), reader: mgr.GetCache(), apiReader: mgr.GetAPIReader(),
		api: api, index: index, interval: interval,
	}
	// Every event is batched (a Report is a record, not a guard): each
	// policy status write reaches its namespaces' Reports, and while
	// 10,000 policies converged the Reports were audited 30,000 times in
	// 13 minutes.
	mapped := func(f handler.MapFunc) handler.EventHandler {
		return batched(handler.EnqueueRequestsFromMapFunc(f), openReportsBatchPeriod)
	}
	b := ctrl.NewControllerManagedBy(mgr).Named(OpenReportsControllerName).
		Watches(&corev1.Namespace{}, mapped(namespaceItself)).
		Watches(&v1alpha1.LoopbackService{}, mapped(ownNamespace)).
		Watches(&v1alpha1.ClusterLoopbackService{}, mapped(r.selectedNamespaces)).
		WatchesRawSource(source.Channel(r.api.appear, handler.EnqueueRequestsFromMapFunc(r.everyNamespace)))
	guarded := builder.WithPredicates(r.policiesApply(), relevantChange())
	for _, o := range watched() {
		if _, ok := o.(*discoveryv1.EndpointSlice); ok {
			b = b.Watches(o, mapped(r.namespacesReachedBySlice), builder.WithPredicates(relevantChange()))
			continue
		}
		b = b.Watches(o, mapped(ownNamespace), guarded)
	}
	return b.Complete(r)
}

func namespaceItself(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetName()}}}
}

func ownNamespace(_ context.Context, o client.Object) []reconcile.Request {
	if o.GetNamespace() == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetNamespace()}}}
}

// policiesApply drops the events of namespaces where no policy applies
// (the policy index answers without a list): their Report, if any, went
// with their last policy's event.
func (r *OpenReportsReconciler) policiesApply() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return !r.index.Env(o.GetNamespace()).Empty()
	})
}

// selectedNamespaces maps a ClusterLoopbackService (as it is, or as it was
// when deleted: controller-runtime maps both sides of an update) to the
// namespaces it applies in.
func (r *OpenReportsReconciler) selectedNamespaces(ctx context.Context, o client.Object) []reconcile.Request {
	p := compileObject(o)
	if p == nil {
		return nil
	}
	var list corev1.NamespaceList
	// Read only: no deep copy of every namespace on each event.
	if err := r.reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to list namespaces")
		return nil
	}
	var out []reconcile.Request
	for _, ns := range list.Items {
		if p.AppliesToNamespace(ns.Name, labels.Set(ns.Labels)) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ns.Name}})
		}
	}
	return out
}

// namespacesReachedBySlice maps an EndpointSlice to its own namespace and,
// when hand-written, to the namespaces of the pods it lists by IP or names
// (observe audits those against such slices, in any namespace).
func (r *OpenReportsReconciler) namespacesReachedBySlice(ctx context.Context, o client.Object) []reconcile.Request {
	out := ownNamespace(ctx, o)
	s, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return out
	}
	if written, err := addrindex.ControllerWritten(ctx, r.reader, s); err == nil && written {
		return out
	}
	pods, err := addrindex.PodsNamed(ctx, r.reader, s)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to map EndpointSlice to the namespaces of its pods", "endpointslice", client.ObjectKeyFromObject(s))
		return out
	}
	seen := map[string]bool{s.Namespace: true}
	for _, p := range pods {
		if !seen[p.Namespace] {
			seen[p.Namespace] = true
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: p.Namespace}})
		}
	}
	return out
}

// reportWriters names the field managers of a Report (kubectl-create, a
// controller's name): what the API server recorded of who wrote it.
func reportWriters(r *openreportsv1alpha1.Report) []string {
	var out []string
	for _, m := range r.ManagedFields {
		if !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	return out
}
