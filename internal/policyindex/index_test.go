package policyindex

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

func lbs(ns, name string, sel map[string]string, ports ...int32) *v1alpha1.LoopbackService {
	x := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}},
	}
	for _, p := range ports {
		x.Spec.Ports = append(x.Spec.Ports, v1alpha1.LoopbackPort{Port: p})
	}
	return x
}

func clbs(name string, nsSel, sel map[string]string, ports ...int32) *v1alpha1.ClusterLoopbackService {
	x := &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: name}}
	x.Spec.NamespaceSelector.MatchLabels = nsSel
	x.Spec.PodSelector.MatchLabels = sel
	for _, p := range ports {
		x.Spec.Ports = append(x.Spec.Ports, v1alpha1.LoopbackPort{Port: p})
	}
	return x
}

// badSelector is a label selector that the CRD schema accepts but that does
// not compile: the operator is not one of In, NotIn, Exists, DoesNotExist.
func badSelector() metav1.LabelSelector {
	return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near", Values: []string{"cart"}}}}
}

var cartPod = labels.Set{"app": "cart"}

// covering lists, sorted, the policies of env that protect port/TCP and
// select pods with podLabels, as the rules see them.
func covering(env *rules.Env, podLabels labels.Set, port int32) []string {
	var out []string
	for _, s := range env.Sets {
		for _, p := range s.Covering(corev1.ProtocolTCP, port) {
			if p.AppliesToNamespace(env.Namespace, env.NamespaceLabels) && p.Selector.Matches(podLabels) {
				out = append(out, p.Ref.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

func matching(env *rules.Env, podLabels labels.Set) []string {
	var out []string
	for _, p := range env.MatchingPolicies(podLabels) {
		out = append(out, p.Ref.String())
	}
	slices.Sort(out)
	return out
}

func wantRefs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestSetAndDeleteLoopbackService(t *testing.T) {
	x := New()
	if env := x.Env("shop"); !env.Empty() || env.Namespace != "shop" {
		t.Fatalf("empty index: Env = %+v, want an empty env of shop", env)
	}
	if err := x.SetLoopbackService(lbs("shop", "envoy", map[string]string{"app": "cart"}, 15000)); err != nil {
		t.Fatal(err)
	}
	if err := x.SetLoopbackService(lbs("shop", "debug", nil, 6060)); err != nil {
		t.Fatal(err)
	}
	if err := x.SetLoopbackService(lbs("billing", "envoy", map[string]string{"app": "cart"}, 15000)); err != nil {
		t.Fatal(err)
	}
	if got := x.Count(); got != 3 {
		t.Errorf("Count = %d, want 3", got)
	}

	shop := x.Env("shop")
	if shop.Empty() {
		t.Fatal("Env(shop) is empty")
	}
	wantRefs(t, "shop covering 15000", covering(shop, cartPod, 15000), "LoopbackService shop/envoy")
	wantRefs(t, "shop covering 6060", covering(shop, cartPod, 6060), "LoopbackService shop/debug")
	wantRefs(t, "shop matching cart", matching(shop, cartPod), "LoopbackService shop/debug", "LoopbackService shop/envoy")
	wantRefs(t, "shop matching web", matching(shop, labels.Set{"app": "web"}), "LoopbackService shop/debug")
	// Another namespace's policies are not in the env.
	wantRefs(t, "billing covering 6060", covering(x.Env("billing"), cartPod, 6060))
	if env := x.Env("web"); !env.Empty() {
		t.Errorf("Env(web) = %+v, want empty", env)
	}

	// An update replaces the policy.
	if err := x.SetLoopbackService(lbs("shop", "envoy", map[string]string{"app": "cart"}, 15001)); err != nil {
		t.Fatal(err)
	}
	shop = x.Env("shop")
	wantRefs(t, "after update, covering 15000", covering(shop, cartPod, 15000))
	wantRefs(t, "after update, covering 15001", covering(shop, cartPod, 15001), "LoopbackService shop/envoy")
	if got := x.Count(); got != 3 {
		t.Errorf("Count after update = %d, want 3", got)
	}

	x.DeleteLoopbackService("shop", "envoy")
	wantRefs(t, "after delete, covering 15001", covering(x.Env("shop"), cartPod, 15001))
	wantRefs(t, "after delete, billing covering 15000", covering(x.Env("billing"), cartPod, 15000), "LoopbackService billing/envoy")
	x.DeleteLoopbackService("shop", "debug")
	if env := x.Env("shop"); !env.Empty() {
		t.Errorf("Env(shop) after deleting every policy = %+v, want empty", env)
	}
	if _, ok := x.namespaces["shop"]; ok {
		t.Error("the bucket of a namespace without policies is kept")
	}
	// Deleting what is not there is a no-op.
	x.DeleteLoopbackService("shop", "envoy")
	x.DeleteLoopbackService("nowhere", "envoy")
	if got := x.Count(); got != 1 {
		t.Errorf("Count = %d, want 1", got)
	}
}

func TestEnvCachesSets(t *testing.T) {
	x := New()
	if err := x.SetLoopbackService(lbs("shop", "envoy", nil, 15000)); err != nil {
		t.Fatal(err)
	}
	a, b := x.Env("shop"), x.Env("shop")
	if len(a.Sets) != 1 || len(b.Sets) != 1 || a.Sets[0] != b.Sets[0] {
		t.Fatalf("two reads without a change return different sets: %v, %v", a.Sets, b.Sets)
	}
	// A change in another namespace keeps this one's set.
	if err := x.SetLoopbackService(lbs("billing", "envoy", nil, 15000)); err != nil {
		t.Fatal(err)
	}
	if c := x.Env("shop"); c.Sets[0] != a.Sets[0] {
		t.Error("a change in billing rebuilt shop's set")
	}
	// A change here rebuilds it; the old env is unaffected (sets are
	// immutable).
	if err := x.SetLoopbackService(lbs("shop", "debug", nil, 6060)); err != nil {
		t.Fatal(err)
	}
	c := x.Env("shop")
	if c.Sets[0] == a.Sets[0] {
		t.Fatal("a change in shop kept shop's stale set")
	}
	if a.Sets[0].Len() != 1 || c.Sets[0].Len() != 2 {
		t.Errorf("old set has %d policies, new one %d; want 1 and 2", a.Sets[0].Len(), c.Sets[0].Len())
	}
}

func TestClusterPolicies(t *testing.T) {
	x := New()
	x.SetNamespaceLabels("prod-a", map[string]string{"env": "prod"})
	x.SetNamespaceLabels("dev-a", map[string]string{"env": "dev"})
	if err := x.SetClusterLoopbackService(clbs("prod-admin", map[string]string{"env": "prod"}, map[string]string{"app": "cart"}, 15000)); err != nil {
		t.Fatal(err)
	}
	if err := x.SetClusterLoopbackService(clbs("everywhere", nil, nil, 9901)); err != nil {
		t.Fatal(err)
	}
	if err := x.SetLoopbackService(lbs("prod-a", "local", nil, 6060)); err != nil {
		t.Fatal(err)
	}
	if got := x.Count(); got != 3 {
		t.Errorf("Count = %d, want 3", got)
	}

	prod := x.Env("prod-a")
	if len(prod.Sets) != 2 {
		t.Fatalf("Env(prod-a) has %d sets, want the namespace's and the cluster's", len(prod.Sets))
	}
	if got := prod.NamespaceLabels; got == nil || got.Get("env") != "prod" {
		t.Errorf("Env(prod-a).NamespaceLabels = %v, want env=prod", got)
	}
	wantRefs(t, "prod-a covering 15000", covering(prod, cartPod, 15000), "ClusterLoopbackService prod-admin")
	wantRefs(t, "prod-a matching cart", matching(prod, cartPod),
		"ClusterLoopbackService everywhere", "ClusterLoopbackService prod-admin", "LoopbackService prod-a/local")

	// Cluster policies are in the env of every namespace, even one without
	// policies or labels; the namespace selector decides.
	dev := x.Env("dev-a")
	if dev.Empty() {
		t.Fatal("Env(dev-a) is empty with cluster policies")
	}
	wantRefs(t, "dev-a covering 15000", covering(dev, cartPod, 15000))
	wantRefs(t, "dev-a matching cart", matching(dev, cartPod), "ClusterLoopbackService everywhere")
	wantRefs(t, "unlabelled covering 9901", covering(x.Env("unknown"), cartPod, 9901), "ClusterLoopbackService everywhere")

	// Relabelling the namespace changes what applies.
	x.SetNamespaceLabels("dev-a", map[string]string{"env": "prod"})
	wantRefs(t, "relabelled dev-a covering 15000", covering(x.Env("dev-a"), cartPod, 15000), "ClusterLoopbackService prod-admin")
	x.DeleteNamespace("dev-a")
	wantRefs(t, "deleted dev-a covering 15000", covering(x.Env("dev-a"), cartPod, 15000))

	x.DeleteClusterLoopbackService("prod-admin")
	wantRefs(t, "after delete, prod-a covering 15000", covering(x.Env("prod-a"), cartPod, 15000))
	x.DeleteClusterLoopbackService("everywhere")
	x.DeleteLoopbackService("prod-a", "local")
	if env := x.Env("prod-a"); !env.Empty() {
		t.Errorf("Env(prod-a) after deleting every policy = %+v, want empty", env)
	}
	if got := x.Count(); got != 0 {
		t.Errorf("Count = %d, want 0", got)
	}
}

func TestCompileErrors(t *testing.T) {
	x := New()
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "shop", Name: "envoy"}
	good := lbs("shop", "envoy", map[string]string{"app": "cart"}, 15000)
	if err := x.SetLoopbackService(good); err != nil {
		t.Fatal(err)
	}
	if err := x.Error(ref); err != nil {
		t.Errorf("Error of a compiled policy = %v", err)
	}

	// A policy that stops compiling is no longer enforced: keeping the
	// old version would enforce what the user removed.
	bad := good.DeepCopy()
	bad.Spec.PodSelector = badSelector()
	err := x.SetLoopbackService(bad)
	if err == nil {
		t.Fatal("SetLoopbackService accepted a selector that does not compile")
	}
	if got := x.Error(ref); got == nil || got.Error() != err.Error() {
		t.Errorf("Error = %v, want %v", got, err)
	}
	if !strings.Contains(err.Error(), "shop/envoy") || !strings.Contains(err.Error(), "spec.podSelector") {
		t.Errorf("error %q does not name the policy and the field", err)
	}
	if got := x.Count(); got != 0 {
		t.Errorf("Count = %d, want 0", got)
	}
	wantRefs(t, "covering 15000 with the policy broken", covering(x.Env("shop"), cartPod, 15000))

	// An invalid port range (which the schema refuses, but an object read
	// before validation may carry) is a compile error too.
	if err := x.SetLoopbackService(lbs("shop", "zero", nil, 0)); err == nil {
		t.Error("SetLoopbackService accepted port 0")
	}

	// Fixing it clears the error.
	if err := x.SetLoopbackService(good); err != nil {
		t.Fatal(err)
	}
	if err := x.Error(ref); err != nil {
		t.Errorf("Error after the fix = %v", err)
	}
	wantRefs(t, "covering 15000 after the fix", covering(x.Env("shop"), cartPod, 15000), "LoopbackService shop/envoy")

	// Deleting a broken policy forgets its error.
	zeroRef := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: "shop", Name: "zero"}
	if x.Error(zeroRef) == nil {
		t.Fatal("no error kept for shop/zero")
	}
	x.DeleteLoopbackService("shop", "zero")
	if err := x.Error(zeroRef); err != nil {
		t.Errorf("Error after delete = %v", err)
	}

	// Cluster policies: a namespace selector that does not compile.
	cref := rules.PolicyRef{Kind: rules.KindClusterLoopbackService, Name: "platform"}
	c := clbs("platform", nil, nil, 9901)
	c.Spec.NamespaceSelector = badSelector()
	if err := x.SetClusterLoopbackService(c); err == nil || !strings.Contains(err.Error(), "spec.namespaceSelector") {
		t.Errorf("SetClusterLoopbackService = %v, want a spec.namespaceSelector error", err)
	}
	if x.Error(cref) == nil {
		t.Error("no error kept for the cluster policy")
	}
	wantRefs(t, "covering 9901", covering(x.Env("shop"), cartPod, 9901))
	x.DeleteClusterLoopbackService("platform")
	if err := x.Error(cref); err != nil {
		t.Errorf("Error after delete = %v", err)
	}
}

func TestSyncedAndReadyCheck(t *testing.T) {
	x := New()
	check := ReadyCheck(x)
	req := httptest.NewRequest("GET", "/readyz", nil)
	if x.Synced() {
		t.Error("a new index is synced")
	}
	if err := check(req); err == nil {
		t.Error("ReadyCheck passes before sync")
	}
	// Policies alone do not make it synced: only the informers know.
	if err := x.SetLoopbackService(lbs("shop", "envoy", nil, 15000)); err != nil {
		t.Fatal(err)
	}
	if x.Synced() || check(req) == nil {
		t.Error("synced before MarkSynced")
	}
	x.MarkSynced()
	if !x.Synced() {
		t.Error("not synced after MarkSynced")
	}
	if err := check(req); err != nil {
		t.Errorf("ReadyCheck after sync: %v", err)
	}
}

// TestConcurrentUse races writers and readers; run with -race.
func TestConcurrentUse(t *testing.T) {
	x := New()
	x.MarkSynced()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				ns := fmt.Sprintf("ns-%d", i%5)
				name := fmt.Sprintf("p-%d-%d", w, i%7)
				if i%3 == 2 {
					x.DeleteLoopbackService(ns, name)
				} else if err := x.SetLoopbackService(lbs(ns, name, map[string]string{"app": "cart"}, int32(15000+i%7))); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					_ = x.SetClusterLoopbackService(clbs(fmt.Sprintf("c-%d", w), nil, nil, 9901))
					x.SetNamespaceLabels(ns, map[string]string{"i": fmt.Sprint(i)})
				}
			}
		})
	}
	for r := range 4 {
		wg.Go(func() {
			for i := range 500 {
				env := x.Env(fmt.Sprintf("ns-%d", (i+r)%5))
				_ = env.MatchingPolicies(cartPod)
				_ = covering(env, cartPod, 15003)
				_ = x.Count()
			}
		})
	}
	wg.Wait()
	// After the dust settles every namespace's env matches its policies.
	for i := range 5 {
		ns := fmt.Sprintf("ns-%d", i)
		env := x.Env(ns)
		n := 0
		for _, s := range env.Sets {
			for _, p := range s.Policies() {
				if p.NamespaceSelector == nil {
					n++
				}
			}
		}
		x.mu.RLock()
		want := 0
		if b := x.namespaces[ns]; b != nil {
			want = len(b.policies)
		}
		x.mu.RUnlock()
		if n != want {
			t.Errorf("Env(%s) has %d namespaced policies, the index %d", ns, n, want)
		}
	}
}

// TestEnvLiveReadsNewNamespaces: a namespace created a moment ago is not in
// the index yet; a review in it reads its labels once, so a cluster
// policy selecting them applies from the namespace's first write. A known
// namespace, or a cluster without cluster policies, costs no read.
func TestEnvLiveReadsNewNamespaces(t *testing.T) {
	ctx := context.Background()
	x := New()
	x.SetNamespaceLabels("old", map[string]string{"env": "dev"})
	var reads []string
	get := func(_ context.Context, ns string) (map[string]string, error) {
		reads = append(reads, ns)
		switch ns {
		case "broken":
			return nil, errors.New("connection refused")
		case "gone":
			return nil, nil
		}
		return map[string]string{"env": "prod"}, nil
	}
	live := func(ns string) *rules.Env {
		t.Helper()
		env, err := x.EnvLive(ctx, ns, get)
		if err != nil {
			t.Fatalf("EnvLive(%s): %v", ns, err)
		}
		return env
	}
	if env := live("new"); !env.Empty() || len(reads) != 0 {
		t.Fatalf("no policies: env %+v, reads %v; want empty, none", env, reads)
	}
	if err := x.SetClusterLoopbackService(clbs("prod-admin", map[string]string{"env": "prod"}, nil, 15000)); err != nil {
		t.Fatal(err)
	}
	// The attack this closes: Env alone does not know the new namespace.
	wantRefs(t, "Env(new) covering 15000", covering(x.Env("new"), cartPod, 15000))
	wantRefs(t, "EnvLive(new) covering 15000", covering(live("new"), cartPod, 15000), "ClusterLoopbackService prod-admin")
	wantRefs(t, "EnvLive(old) covering 15000", covering(live("old"), cartPod, 15000))
	wantRefs(t, "EnvLive(gone) covering 15000", covering(live("gone"), cartPod, 15000))
	if _, err := x.EnvLive(ctx, "broken", get); err == nil || !strings.Contains(err.Error(), `namespace "broken"`) {
		t.Errorf("EnvLive(broken) error = %v, want one naming the namespace", err)
	}
	if !slices.Equal(reads, []string{"new", "gone", "broken"}) {
		t.Errorf("reads = %v, want only the namespaces the index has not seen", reads)
	}
	// Once the informer delivers it, the index's labels are used.
	x.SetNamespaceLabels("new", map[string]string{"env": "dev"})
	wantRefs(t, "EnvLive(new) after its event", covering(live("new"), cartPod, 15000))
	if len(reads) != 3 {
		t.Errorf("reads = %v after the namespace's event, want no new read", reads)
	}
}

// A policy's status is written after every reconcile; compiling reads only
// the spec, whose every change bumps the generation. A write that keeps the
// UID and generation must keep the namespace's set (10,000 status writes
// rebuilt a namespace's set each at scale); a new generation, a new UID (the
// policy deleted and created again) or an object without a generation (not
// from the API server) must not.
func TestStatusWritesKeepTheSet(t *testing.T) {
	withMeta := func(o metav1.Object, uid string, gen int64) {
		o.SetUID(types.UID(uid))
		o.SetGeneration(gen)
	}
	for _, tc := range []struct {
		name    string
		uid     string
		gen     int64
		rebuilt bool
	}{
		{"status only", "u1", 1, false},
		{"new generation", "u1", 2, true},
		{"recreated", "u2", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := New()
			p := lbs("shop", "envoy", nil, 15000)
			withMeta(p, "u1", 1)
			c := clbs("mesh", nil, nil, 15020)
			withMeta(c, "c1", 1)
			if err := x.SetLoopbackService(p); err != nil {
				t.Fatal(err)
			}
			if err := x.SetClusterLoopbackService(c); err != nil {
				t.Fatal(err)
			}
			before := x.Env("shop")
			p2, c2 := p.DeepCopy(), c.DeepCopy()
			p2.Status.ObservedGeneration, c2.Status.ObservedGeneration = 1, 1
			withMeta(p2, tc.uid, tc.gen)
			withMeta(c2, strings.Replace(tc.uid, "u", "c", 1), tc.gen)
			if tc.rebuilt {
				p2.Spec.Ports[0].Port, c2.Spec.Ports[0].Port = 15001, 15021
			}
			if err := x.SetLoopbackService(p2); err != nil {
				t.Fatal(err)
			}
			if err := x.SetClusterLoopbackService(c2); err != nil {
				t.Fatal(err)
			}
			after := x.Env("shop")
			for i := range before.Sets {
				if kept := after.Sets[i] == before.Sets[i]; kept == tc.rebuilt {
					t.Errorf("set %d kept = %v, want %v", i, kept, !tc.rebuilt)
				}
			}
			if tc.rebuilt {
				wantRefs(t, "port 15001", covering(after, cartPod, 15001), "LoopbackService shop/envoy")
				wantRefs(t, "port 15021", covering(after, cartPod, 15021), "ClusterLoopbackService mesh")
			}
		})
	}
	// Without a generation nothing can tell a spec change: always compile.
	x := New()
	if err := x.SetLoopbackService(lbs("shop", "envoy", nil, 15000)); err != nil {
		t.Fatal(err)
	}
	if err := x.SetLoopbackService(lbs("shop", "envoy", nil, 15001)); err != nil {
		t.Fatal(err)
	}
	wantRefs(t, "no generation, port 15001", covering(x.Env("shop"), cartPod, 15001), "LoopbackService shop/envoy")
}
