package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestNameTakenAdvice: the advice for a taken managed name must name what
// to change; deleting a NetworkPolicy that a loopguard policy controls
// brings it back.
func TestNameTakenAdvice(t *testing.T) {
	key := types.NamespacedName{Namespace: "shop", Name: "loopguard-cluster-mesh"}
	ctl := func(kind, name string) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: "loopguard.io/v1alpha1", Kind: kind, Name: name}
	}
	lbs := metav1.OwnerReference{Kind: "LoopbackService", Name: "cluster-mesh"}
	clbs := metav1.OwnerReference{Kind: "ClusterLoopbackService", Name: "mesh"}
	for _, tc := range []struct {
		name string
		err  NameTakenError
		want string
	}{
		{"a user's", NameTakenError{Key: key, Policy: clbs}, "not owned by this policy; rename or delete it"},
		{"another object's", NameTakenError{Key: key, Policy: clbs, Controller: &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x"}}, "; rename or delete it"},
		{"a LoopbackService's, for the cluster policy", NameTakenError{Key: key, Policy: clbs, Controller: ctl("LoopbackService", "cluster-mesh")},
			"it is the managed NetworkPolicy of LoopbackService shop/cluster-mesh, which recreates it if it is deleted; rename or delete that LoopbackService"},
		{"the cluster policy's, for the LoopbackService", NameTakenError{Key: key, Policy: lbs, Controller: ctl("ClusterLoopbackService", "mesh")},
			"it is the managed NetworkPolicy of ClusterLoopbackService mesh, which recreates it if it is deleted; rename this LoopbackService"},
		{"an earlier policy of the same name", NameTakenError{Key: key, Policy: clbs, Controller: ctl("ClusterLoopbackService", "mesh")},
			"it is an earlier ClusterLoopbackService mesh's, deleted since: the garbage collector deletes it"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			if got := tc.err.Error(); !strings.Contains(got, tc.want) {
				t.Errorf("%s\nwant it to contain: %s", got, tc.want)
			}
		})
	}
}
