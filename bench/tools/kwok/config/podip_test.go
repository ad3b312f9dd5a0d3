package main

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	"sigs.k8s.io/kwok/pkg/utils/gotpl"
)

// render renders the pod-ready stage's status with kwok's own template
// renderer, the pool handing out fromPool.
func render(t *testing.T, stage string, pod *corev1.Pod, fromPool string) corev1.PodStatus {
	t.Helper()
	var s v1alpha1.Stage
	if err := yaml.Unmarshal([]byte(stage), &s); err != nil {
		t.Fatal(err)
	}
	r := gotpl.NewRenderer(gotpl.FuncMap{
		"NodeIPsWith": func(string) []string { return []string{"192.0.2.1"} },
		"PodIPsWith": func(string, bool, string, string, string) []string {
			return []string{fromPool}
		},
	})
	out, err := r.ToJSON(s.Spec.Next.StatusTemplate, pod)
	if err != nil {
		t.Fatal(err)
	}
	var st corev1.PodStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return st
}

func TestPodReadyKeepsThePlannedIP(t *testing.T) {
	ready, err := podReady(fast.DefaultPodReady)
	if err != nil {
		t.Fatal(err)
	}
	pod := func(ann map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Annotations: ann},
			Spec: corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
	}
	for _, tc := range []struct {
		name  string
		stage string
		ann   map[string]string
		want  string
	}{
		{"kwok's own stage takes a new IP from the pool", fast.DefaultPodReady, map[string]string{PodIPAnnotation: "10.64.0.2"}, "10.99.0.7"},
		{"the planned IP", ready, map[string]string{PodIPAnnotation: "10.64.0.2"}, "10.64.0.2"},
		{"no plan: the pool", ready, nil, "10.99.0.7"},
		{"other annotations: the pool", ready, map[string]string{"a": "b"}, "10.99.0.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := render(t, tc.stage, pod(tc.ann), "10.99.0.7")
			if st.PodIP != tc.want || len(st.PodIPs) != 1 || st.PodIPs[0].IP != tc.want || st.Phase != corev1.PodRunning {
				t.Fatalf("status %+v: want podIP and podIPs %s, Running", st, tc.want)
			}
		})
	}
}

func TestPodReadyFailsWhenKwokChanges(t *testing.T) {
	_, err := podReady(strings.Replace(fast.DefaultPodReady, "PodIPsWith", "PodIPsFor", 1))
	if err == nil || !strings.Contains(err.Error(), "update bench/tools/kwok/config") {
		t.Fatalf("want an error naming what to update, got %v", err)
	}
}
