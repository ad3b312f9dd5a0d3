package controllers

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// BenchmarkAuditDigest is the digest of one namespace of the 150,000-pod
// bench (100 pods, 7 NetworkPolicies): what a cluster policy pays per
// namespace whose audit it reuses.
func BenchmarkAuditDigest(b *testing.B) {
	clbs := &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: "mesh", UID: "u-mesh", Generation: 1},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 15000}}}}}
	p, err := rules.CompileCluster(clbs)
	if err != nil {
		b.Fatal(err)
	}
	in := &auditInputs{nsLabels: labels.Set{"team": "a", "kubernetes.io/metadata.name": "scale-0001"}}
	in.snap.Env = rules.NewEnv("scale-0001", in.nsLabels, rules.NewSet([]*rules.Policy{p}))
	for i := range 100 {
		in.snap.Pods = append(in.snap.Pods, podview.Of(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "scale-0001", Name: fmt.Sprintf("scale-pod-%05d", i),
			UID: types.UID(fmt.Sprintf("6f1c2a7e-0000-4000-8000-%012d", i)), ResourceVersion: fmt.Sprint(1000000 + i)}}))
	}
	for b.Loop() {
		if _, ok := in.digest(p); !ok {
			b.Fatal("no digest")
		}
	}
}
