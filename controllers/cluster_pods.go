package controllers

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// clusterPodMapper maps a pod to the cluster policies that select it, as
// the engine judges with the namespace's labels the cache holds now. The
// webhook's policy index answers the same question, but handlers of its
// own keep it, which may run after this controller's: a pod created
// right after its namespace was labelled into a cluster policy could be
// mapped to nothing, its namespace already read again for the label
// change (dirty.go), and the pod missed until the next full audit.
type clusterPodMapper struct {
	reader client.Reader

	mu  sync.Mutex
	key string // the policies' names, UIDs and generations the set holds
	set *rules.Set
}

// policies is the compiled set of every cluster policy in the cache,
// compiled again only when one comes, goes or changes its spec.
func (m *clusterPodMapper) policies(ctx context.Context) (*rules.Set, error) {
	objs, err := clusterindex.Objects(ctx, m.reader, clbsExemplar, newCLBSList, "")
	if err != nil {
		return nil, err
	}
	var clbss []*v1alpha1.ClusterLoopbackService
	for _, o := range objs {
		if c, ok := o.(*v1alpha1.ClusterLoopbackService); ok {
			clbss = append(clbss, c)
		}
	}
	slices.SortFunc(clbss, func(a, b *v1alpha1.ClusterLoopbackService) int { return strings.Compare(a.Name, b.Name) })
	var key strings.Builder
	for _, c := range clbss {
		key.WriteString(c.Name + "\x00" + string(c.UID) + "\x00" + strconv.FormatInt(c.Generation, 10) + "\x00")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set != nil && m.key == key.String() {
		return m.set, nil
	}
	var compiled []*rules.Policy
	for _, c := range clbss {
		if p, err := rules.CompileCluster(c); err == nil {
			compiled = append(compiled, p)
		}
	}
	m.key, m.set = key.String(), rules.NewSet(compiled)
	return m.set, nil
}

// mapPod maps a pod (its old and its new version, on update).
func (m *clusterPodMapper) mapPod(ctx context.Context, o client.Object) []reconcile.Request {
	set, err := m.policies(ctx)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to list ClusterLoopbackServices")
		return nil
	}
	nsLabels, err := namespaceLabels(ctx, m.reader, o.GetNamespace())
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "failed to read namespace", "namespace", o.GetNamespace())
		return nil
	}
	var out []reconcile.Request
	for _, p := range rules.NewEnv(o.GetNamespace(), nsLabels, set).MatchingPolicies(labels.Set(o.GetLabels())) {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Ref.Name}})
	}
	return out
}
