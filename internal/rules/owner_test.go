package rules

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// ownedBy sets a controller owner reference.
func ownedBy(apiVersion, kind, name string, uid types.UID) func(metav1.Object) {
	return func(o metav1.Object) {
		o.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: ptr.To(true)}})
	}
}

func withUID[T metav1.Object](o T, uid types.UID) T { o.SetUID(uid); return o }

func TestOwnedByWorkload(t *testing.T) {
	envoyPort := withContainer("envoy", port(15000))
	rs := withUID(replicaSet("cart-7f9", envoyPort), "rs-uid")
	dep := withUID(deployment("cart", envoyPort), "dep-uid")
	cron := withUID(cronJob("nightly"), "cron-uid")
	jb := withUID(job("nightly-1"), "job-uid")
	ss := withUID(statefulSet("db", envoyPort), "ss-uid")
	owners := NewOwners([]runtime.Object{rs, dep, cron, jb, ss})
	with := func(o metav1.Object, opts ...func(metav1.Object)) runtime.Object {
		for _, f := range opts {
			f(o)
		}
		return o.(runtime.Object)
	}
	tests := []struct {
		name   string
		obj    runtime.Object
		owners Owners
		want   bool
	}{
		{"a pod of its ReplicaSet, same ports: judged through it", with(pod("cart-7f9-x", envoyPort), ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "rs-uid")), owners, true},
		{"a ReplicaSet of its Deployment", with(replicaSet("cart-7f9", envoyPort), ownedBy("apps/v1", "Deployment", "cart", "dep-uid")), owners, true},
		{"a Job of its CronJob", with(job("nightly-2"), ownedBy("batch/v1", "CronJob", "nightly", "cron-uid")), owners, true},
		{"a pod of its Job", with(pod("nightly-1-x"), ownedBy("batch/v1", "Job", "nightly-1", "job-uid")), owners, true},
		{"a pod of its StatefulSet, another image", with(pod("db-0", withContainer("envoy", port(15000), func(c *corev1.Container) { c.Image = "v2" })), ownedBy("apps/v1", "StatefulSet", "db", "ss-uid")), owners, true},
		{"hole 9: a pod claiming a CronJob (which owns Jobs, not pods)", with(pod("x"), ownedBy("batch/v1", "CronJob", "nightly", "cron-uid")), owners, false},
		{"a pod claiming a Deployment (which owns ReplicaSets)", with(pod("x", envoyPort), ownedBy("apps/v1", "Deployment", "cart", "dep-uid")), owners, false},
		{"an owner that does not exist", with(pod("x"), ownedBy("batch/v1", "Job", "ghost", "ghost-uid")), owners, false},
		{"an existing owner's name with another UID", with(pod("x", envoyPort), ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "other-uid")), owners, false},
		{"the owner's UID under another API group", with(pod("x", envoyPort), ownedBy("example.com/v1", "ReplicaSet", "cart-7f9", "rs-uid")), owners, false},
		{"a real owner whose template declares other ports", with(pod("x", envoyPort, withContainer("debug", port(6060))), ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "rs-uid")), owners, false},
		{"a real owner whose template has no hostNetwork", with(pod("x", envoyPort, withHostNetwork()), ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "rs-uid")), owners, false},
		{"a reference that is not the controller", with(pod("x", envoyPort), func(o metav1.Object) {
			ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "rs-uid")(o)
			refs := o.GetOwnerReferences()
			refs[0].Controller = nil
			o.SetOwnerReferences(refs)
		}), owners, false},
		{"no owner snapshot", with(pod("cart-7f9-x", envoyPort), ownedBy("apps/v1", "ReplicaSet", "cart-7f9", "rs-uid")), nil, false},
		{"no owner", pod("x"), owners, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OwnedByWorkload(tt.obj, tt.owners); got != tt.want {
				t.Errorf("OwnedByWorkload = %v, want %v", got, tt.want)
			}
		})
	}
}
