package hostnet

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

func TestAnalyze(t *testing.T) {
	p, err := rules.Compile(&v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ops"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 8126, Protocol: corev1.ProtocolTCP}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	envFor := func(ns string) *rules.Env {
		return &rules.Env{Namespace: ns, Sets: []*rules.Set{rules.NewSet([]*rules.Policy{p})}}
	}
	mk := func(ns, name, node string, host bool, l map[string]string, ports ...int32) *corev1.Pod {
		c := corev1.Container{Name: "c"}
		for _, port := range ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port})
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
			Spec: corev1.PodSpec{HostNetwork: host, NodeName: node, Containers: []corev1.Container{c}}}
	}
	deleting := mk("ops", "leaving", "n1", true, nil)
	deleting.DeletionTimestamp = &metav1.Time{}
	pods := []*corev1.Pod{
		mk("ops", "agent", "n1", true, map[string]string{"app": "agent"}, 8126, 9000),
		mk("kube-system", "proxy", "n1", true, nil, 10249),
		mk("ops", "other-node", "n2", true, nil),
		mk("ops", "pod-network", "n1", false, map[string]string{"app": "agent"}, 8126),
		deleting,
	}
	got := Analyze("n1", views(pods...), envFor)
	want := []PodReport{
		{Namespace: "kube-system", Name: "proxy", Node: "n1", Ports: []string{"10249/TCP"}, NodeMates: []string{"ops/agent"}},
		{Namespace: "ops", Name: "agent", Node: "n1", Ports: []string{"8126/TCP", "9000/TCP"},
			Policies: []string{"LoopbackService ops/agent"}, ProtectedPorts: []string{"8126/TCP"}, NodeMates: []string{"kube-system/proxy"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Analyze:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Critical() || !got[1].Critical() {
		t.Errorf("only the selected pod is critical")
	}
	if s := got[1].Summary(); s != `hostNetwork pod ops/agent on node "n1" shares the node's loopback with 1 other hostNetwork pods (kube-system/proxy) and every node process; it is selected by LoopbackService ops/agent, whose loopback-only ports are therefore on the node; it declares protected ports 8126/TCP on the node's network` {
		t.Errorf("Summary = %s", s)
	}
}
