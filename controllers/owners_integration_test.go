package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestAuditOfPodsWithFakeOwners: a pod is judged through its controller
// owner only when the owner is real (it exists with that UID, its kind
// owns pods, its template declares the same ports); anyone may write a
// pod's ownerReferences, and a made-up owner must not hide it.
func TestAuditOfPodsWithFakeOwners(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	envoy := []corev1.ContainerPort{{ContainerPort: 15000, Protocol: corev1.ProtocolTCP}}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "envoy", Image: "registry.invalid/envoy", Ports: envoy}}},
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
		Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}, Template: tmpl},
	}
	g.Expect(env.Client.Create(ctx, rs)).To(Succeed())
	jobTmpl := *tmpl.DeepCopy()
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	cron := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(true), JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}},
	}
	g.Expect(env.Client.Create(ctx, cron)).To(Succeed())
	owned := func(name, apiVersion, kind, owner string, uid types.UID) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "cart"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: owner, UID: uid, Controller: ptr.To(true)}}},
			Spec: tmpl.Spec,
		}
		g.Expect(env.Client.Create(ctx, p)).To(Succeed())
	}
	owned("cart-x1", "apps/v1", "ReplicaSet", "cart", rs.UID)       // real: reported as the ReplicaSet
	owned("by-cronjob", "batch/v1", "CronJob", "nightly", cron.UID) // a CronJob owns Jobs, not pods
	// The garbage collector deletes a pod whose owner it looks up and does
	// not find; an API version it cannot resolve keeps it from looking.
	owned("by-ghost", "apps/v9", "ReplicaSet", "ghost", "0b5e4c1e-0000-4000-8000-000000000001")
	owned("by-other-uid", "apps/v9", "ReplicaSet", "cart", "0b5e4c1e-0000-4000-8000-000000000002")

	policy := lbs(ns, "envoy", v1alpha1.LoopbackPort{Port: 15000})
	policy.Spec.EnforcementAction = v1alpha1.ActionAudit
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	g.Eventually(func() []string {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
		var out []string
		for _, v := range policy.Status.Violations {
			out = append(out, v.Kind+"/"+v.Name)
		}
		return out
	}, timeout, poll).Should(ConsistOf("CronJob/nightly", "ReplicaSet/cart", "Pod/by-cronjob", "Pod/by-ghost", "Pod/by-other-uid"))
}
