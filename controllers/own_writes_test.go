package controllers

import (
	"context"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
)

// TestOwnWritesDropOnlyTheVersionWritten: the event of a policy
// reconciler's own write is dropped; any other version of the object (a
// tenant's edit), a deletion, and an object of another kind of the same
// name pass.
func TestOwnWritesDropOnlyTheVersionWritten(t *testing.T) {
	ctx := context.Background()
	own := newOwnWrites()
	c := own.client(fake.NewClientBuilder().WithScheme(app.Scheme()).
		WithStatusSubresource(&v1alpha1.LoopbackService{}).Build())
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "loopguard-redis"}}
	if err := c.Create(ctx, np); err != nil {
		t.Fatal(err)
	}
	pass := own.notMine()
	update := func(o client.Object) bool { return pass.Update(event.UpdateEvent{ObjectOld: o, ObjectNew: o}) }
	if pass.Create(event.CreateEvent{Object: np}) {
		t.Error("the event of loopguard's own create passed")
	}
	// Both controllers watch NetworkPolicies: neither uses the entry up.
	if update(np) || update(np) {
		t.Error("the event of loopguard's own write passed the second watch")
	}

	// A tenant's edit, made with a plain client: another version.
	tenant := np.DeepCopy()
	tenant.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	tenant.ResourceVersion = "999"
	if !update(tenant) {
		t.Error("a tenant's edit (another resourceVersion) was dropped: its drift would not be repaired")
	}

	// The repair is loopguard's again.
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if err := c.Update(ctx, np); err != nil {
		t.Fatal(err)
	}
	if update(np) {
		t.Error("the event of loopguard's own update passed")
	}
	// A policy of the same name: another kind, its own entry.
	lbs := &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "loopguard-redis"}}
	lbs.ResourceVersion = np.ResourceVersion
	if !update(lbs) {
		t.Error("an object of another kind with the same key and version was dropped")
	}
	lbs.ResourceVersion = ""
	if err := c.Create(ctx, lbs); err != nil {
		t.Fatal(err)
	}
	lbs.Status.MatchedPods = ptr.To[int32](3)
	if err := c.Status().Update(ctx, lbs); err != nil {
		t.Fatal(err)
	}
	if update(lbs) {
		t.Error("the event of loopguard's own status write passed")
	}

	if !pass.Delete(event.DeleteEvent{Object: np}) {
		t.Error("a deletion was dropped")
	}
	if !pass.Create(event.CreateEvent{Object: np}) {
		t.Error("the entry of a deleted object was kept")
	}
	if len(own.written) != 1 || own.written[keyOf(lbs)] == "" {
		t.Errorf("entries kept: %v", own.written)
	}
}
