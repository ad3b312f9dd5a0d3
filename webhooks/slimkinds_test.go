package webhooks

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

// TestSlimDecodeCoversEveryKind: every pod and workload kind of the kinds
// table is slim-decoded, its template read from where the table says it
// lives, to what the rules see of a full decode.
func TestSlimDecodeCoversEveryKind(t *testing.T) {
	for _, k := range kinds.All {
		if k.Role != kinds.RolePod && k.Role != kinds.RoleWorkload {
			if _, _, ok := slimTarget(k.New()); ok {
				t.Errorf("%s: slimmed, but the table says it is small", k.GVK.Kind)
			}
			continue
		}
		t.Run(k.GVK.Kind, func(t *testing.T) {
			if k.Role == kinds.RoleWorkload {
				if _, ok := (&slimWorkload{}).templateAt(k.TemplatePath); !ok {
					t.Fatalf("the slim workload type does not decode a template at %v", k.TemplatePath)
				}
			}
			full := k.New()
			full.SetName("w")
			full.SetNamespace("shop")
			full.SetLabels(map[string]string{"tier": "web"})
			spec := corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "c", Image: "i",
				Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000, Protocol: corev1.ProtocolTCP}}}}}
			if p, ok := full.(*corev1.Pod); ok {
				p.Spec = spec
			} else {
				k.SetTemplate(full, &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "cart"}}, Spec: spec})
			}
			raw, err := json.Marshal(full)
			if err != nil {
				t.Fatal(err)
			}
			slim := k.New()
			if ok, err := decodeSlim(raw, slim); !ok || err != nil {
				t.Fatalf("decodeSlim: %v, %v", ok, err)
			}
			want, ok1 := rules.PodTemplateOf(full)
			got, ok2 := rules.PodTemplateOf(slim)
			if !ok1 || !ok2 {
				t.Fatalf("PodTemplateOf: full %v, slim %v", ok1, ok2)
			}
			want.Spec.Containers[0].Image = ""
			if got.Object != want.Object || got.SpecPath.String() != want.SpecPath.String() ||
				!equality.Semantic.DeepEqual(got.Labels, want.Labels) || !equality.Semantic.DeepEqual(got.Spec, want.Spec) {
				t.Fatalf("slim decode differs from the full one:\n got %+v\nwant %+v", got, want)
			}
			if slim.GetLabels()["tier"] != "web" {
				t.Fatalf("metadata not decoded: %v", slim.GetLabels())
			}
		})
	}
}
