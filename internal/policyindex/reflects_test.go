package policyindex

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/internal/rules"
)

func stamped[T metav1.Object](o T, uid string, gen int64) T {
	o.SetUID(types.UID(uid))
	o.SetGeneration(gen)
	return o
}

func TestReflects(t *testing.T) {
	x := New()
	envoy := stamped(lbs("shop", "envoy", nil, 15000), "u1", 1)
	broken := stamped(lbs("shop", "broken", nil, 6060), "u2", 3)
	broken.Spec.PodSelector = badSelector()
	mesh := stamped(clbs("mesh", nil, nil, 15020), "c1", 2)
	for _, o := range []error{x.SetLoopbackService(envoy), x.SetClusterLoopbackService(mesh)} {
		if o != nil {
			t.Fatal(o)
		}
	}
	if x.SetLoopbackService(broken) == nil {
		t.Fatal("a bad selector compiled")
	}
	x.SetNamespaceLabels("shop", map[string]string{"team": "a"})

	newer := stamped(envoy.DeepCopy(), "u1", 2)
	again := stamped(envoy.DeepCopy(), "u9", 1)
	for _, tc := range []struct {
		name      string
		namespace string
		objs      []metav1.Object
		want      bool
	}{
		{"what it holds, a policy that does not compile included", "shop", []metav1.Object{broken, envoy}, true},
		{"a newer generation", "shop", []metav1.Object{newer, broken}, false},
		{"created again under the same name", "shop", []metav1.Object{again, broken}, false},
		{"one more", "shop", []metav1.Object{envoy, broken, stamped(lbs("shop", "debug", nil, 1), "u3", 1)}, false},
		{"one deleted", "shop", []metav1.Object{envoy}, false},
		{"a namespace it has no policy of", "billing", nil, true},
		{"a policy in a namespace it has none of", "billing", []metav1.Object{stamped(lbs("billing", "x", nil, 1), "u4", 1)}, false},
		{"the cluster policies", "", []metav1.Object{mesh}, true},
		{"a cluster policy's newer generation", "", []metav1.Object{stamped(mesh.DeepCopy(), "c1", 3)}, false},
		{"no cluster policy", "", nil, false},
	} {
		if got := x.Reflects(tc.namespace, tc.objs); got != tc.want {
			t.Errorf("%s: Reflects = %v, want %v", tc.name, got, tc.want)
		}
	}

	if !x.ReflectsNamespace("shop", map[string]string{"team": "a"}, true) {
		t.Error("the namespace's labels as stored are not reflected")
	}
	if x.ReflectsNamespace("shop", map[string]string{"team": "b"}, true) {
		t.Error("relabelled namespace reflected")
	}
	if x.ReflectsNamespace("shop", nil, false) {
		t.Error("a namespace the index holds is reflected as absent")
	}
	x.SetNamespaceLabels("plain", nil)
	if !x.ReflectsNamespace("plain", map[string]string{}, true) {
		t.Error("a namespace without labels: nil and empty labels differ")
	}
	// A status write to a policy that does not compile keeps its error.
	if err := x.SetLoopbackService(stamped(broken.DeepCopy(), "u2", 3)); err != nil || x.Error(refOf(broken)) == nil {
		t.Errorf("status write of a policy that does not compile: returned %v, kept error %v; want nil and its error", err, x.Error(refOf(broken)))
	}
	if !x.ReflectsNamespace("billing", nil, false) || x.ReflectsNamespace("billing", nil, true) {
		t.Error("a namespace the index never saw")
	}

	// Deleting the last policy of a namespace leaves nothing to reflect,
	// a policy that does not compile included.
	x.DeleteLoopbackService("shop", "envoy")
	if x.Reflects("shop", []metav1.Object{broken}) != true {
		t.Error("after a delete, what remains is not reflected")
	}
	x.DeleteLoopbackService("shop", "broken")
	if !x.Reflects("shop", nil) {
		t.Error("a namespace whose policies are all deleted")
	}
}

func refOf(o metav1.Object) rules.PolicyRef {
	return rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: o.GetNamespace(), Name: o.GetName()}
}
