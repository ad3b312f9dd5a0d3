package webhooks

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// TestSlimDecodeAgreesWithFullDecode: the member-by-member slim decode
// reads the same containers, ports, labels, hostNetwork and phase as a full
// decode of corev1.Pod, whatever else the pod carries and however its
// names are escaped.
func TestSlimDecodeAgreesWithFullDecode(t *testing.T) {
	for _, tc := range []struct{ name, pod string }{
		{"plain", `{"metadata":{"name":"a","labels":{"app":"cart"}},"spec":{"containers":[{"name":"c","ports":[{"containerPort":15000}]}]}}`},
		{"unknown members of every shape", `{"kind":"Pod","metadata":{"name":"a","annotations":{"x":"{\"y\":[1,2]}"},"managedFields":[{"manager":"m","fieldsV1":{"f:spec":{}}}]},
			"spec":{"volumes":[{"name":"v","emptyDir":{}}],"hostNetwork":true,"containers":[{"name":"c","image":"i","env":[{"name":"E","value":"]}"}],
			"resources":{"limits":{"cpu":"1"}},"ports":[{"name":"admin","containerPort":15000,"protocol":"UDP","hostPort":1}],"livenessProbe":{"tcpSocket":{"port":15000}}}]},"status":{"phase":"Running"}}`},
		{"escaped names", `{"metadata":{"\u006eame":"a"},"spec":{"cont\u0061iners":[{"\u006eame":"c","p\u006frts":[{"containerPort":6060}]}]}}`},
		{"init, sidecar and ephemeral", `{"spec":{"initContainers":[{"name":"s","restartPolicy":"Always","ports":[{"containerPort":1}]}],"ephemeralContainers":[{"name":"d","ports":[{"containerPort":2}]}]}}`},
		{"nulls", `{"metadata":null,"spec":{"containers":null,"initContainers":[{"name":"i","ports":null}]}}`},
		{"duplicate member, last wins", `{"spec":{"containers":[{"name":"x"}],"containers":[{"name":"y","ports":[{"containerPort":3}]}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var full corev1.Pod
			if err := json.Unmarshal([]byte(tc.pod), &full); err != nil {
				t.Fatal(err)
			}
			var slim corev1.Pod
			ok, err := decodeSlim([]byte(tc.pod), &slim)
			if !ok || err != nil {
				t.Fatalf("decodeSlim: %v, %v", ok, err)
			}
			want := corev1.Pod{ObjectMeta: (&slimMeta{Name: full.Name, GenerateName: full.GenerateName, Namespace: full.Namespace, Labels: full.Labels, DeletionTimestamp: full.DeletionTimestamp}).objectMeta()}
			want.Spec.HostNetwork = full.Spec.HostNetwork
			want.Status.Phase = full.Status.Phase
			for _, c := range full.Spec.Containers {
				want.Spec.Containers = append(want.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy})
			}
			for _, c := range full.Spec.InitContainers {
				want.Spec.InitContainers = append(want.Spec.InitContainers, corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy})
			}
			for _, c := range full.Spec.EphemeralContainers {
				want.Spec.EphemeralContainers = append(want.Spec.EphemeralContainers, corev1.EphemeralContainer{
					EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy}})
			}
			if !equality.Semantic.DeepEqual(slim, want) {
				t.Fatalf("slim decode differs from the full one:\n got %+v\nwant %+v", slim, want)
			}
		})
	}
}

// TestSlimDecodeRefusesNonObjects: a container that is not an object is an
// error, as the full decode says too.
func TestSlimDecodeRefusesNonObjects(t *testing.T) {
	for _, pod := range []string{`{"spec":{"containers":[5]}}`, `{"spec":"x"}`, `{"metadata":[1]}`} {
		var full corev1.Pod
		fullErr := json.Unmarshal([]byte(pod), &full)
		var slim corev1.Pod
		if _, err := decodeSlim([]byte(pod), &slim); err == nil || fullErr == nil {
			t.Errorf("%s: slim error %v, full error %v; want both", pod, err, fullErr)
		}
	}
}
