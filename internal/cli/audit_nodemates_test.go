package cli

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestAuditNodeMates: pods of any namespace read that can enter the
// network namespace of a protected pod on their node are reported with
// their reasons, the protected pods and the policies; others are not.
func TestAuditNodeMates(t *testing.T) {
	p, err := rules.Compile(&v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "envoy-admin", Namespace: "shop"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	env := &rules.Env{Namespace: "shop", Sets: []*rules.Set{rules.NewSet([]*rules.Policy{p})}}
	mk := func(ns, name, node string, l map[string]string, sc *corev1.SecurityContext) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", SecurityContext: sc}}}}
	}
	priv := &corev1.SecurityContext{Privileged: func() *bool { b := true; return &b }()}
	cart := mk("shop", "cart-0", "node-1", map[string]string{"app": "cart"}, nil)
	pods := []*corev1.Pod{
		cart,
		mk("tools", "debug", "node-1", nil, priv),
		mk("tools", "elsewhere", "node-2", nil, priv),
		mk("tools", "harmless", "node-1", nil, nil),
	}
	st := &clusterState{pods: map[string][]*podview.Pod{"shop": {podview.Of(cart)}}}
	for _, q := range pods {
		st.collectRiskyPod(podview.Of(q))
	}
	rep := &auditReport{NodeMates: []reportNodeMate{}}
	st.nodeMates(map[string]*rules.Env{"shop": env}, rep)
	if len(rep.NodeMates) != 1 {
		t.Fatalf("node-mates: %+v", rep.NodeMates)
	}
	m := rep.NodeMates[0]
	if m.Namespace != "tools" || m.Name != "debug" || m.Node != "node-1" ||
		strings.Join(m.Reasons, ";") != "privileged container main" || strings.Join(m.Protected, ",") != "shop/cart-0" ||
		len(m.Policies) != 1 || m.Policies[0].Name != "envoy-admin" {
		t.Errorf("node-mate: %+v", m)
	}
	rep.Summary.Namespaces = 1
	rep.finish()
	var out bytes.Buffer
	if err := writeAuditTable(&out, rep, "shop", false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tools/debug   node-1   lbs/envoy-admin   shop/cart-0", "privileged container main", "1 node-mate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
