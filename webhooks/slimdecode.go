package webhooks

import (
	"encoding/json"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/kinds"
)

// The slim types hold what the rules read of an object (see internal/slim
// for the same list on the cache side); decoding into them skips env,
// resources, probes, volumes and managedFields.
type slimMeta struct {
	Name              string            `json:"name"`
	GenerateName      string            `json:"generateName"`
	Namespace         string            `json:"namespace"`
	Labels            map[string]string `json:"labels"`
	DeletionTimestamp *metav1.Time      `json:"deletionTimestamp"`
}

func (m *slimMeta) objectMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, GenerateName: m.GenerateName, Namespace: m.Namespace, Labels: m.Labels, DeletionTimestamp: m.DeletionTimestamp}
}

type slimContainer struct {
	Name          string                         `json:"name"`
	Ports         []corev1.ContainerPort         `json:"ports"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
}

type slimPodSpec struct {
	Containers          []slimContainer `json:"containers"`
	InitContainers      []slimContainer `json:"initContainers"`
	EphemeralContainers []slimContainer `json:"ephemeralContainers"`
	HostNetwork         bool            `json:"hostNetwork"`
}

func containers(cs []slimContainer) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy}
	}
	return out
}

func (s *slimPodSpec) podSpec() corev1.PodSpec {
	spec := corev1.PodSpec{Containers: containers(s.Containers), InitContainers: containers(s.InitContainers), HostNetwork: s.HostNetwork}
	for _, c := range s.EphemeralContainers {
		spec.EphemeralContainers = append(spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy}})
	}
	return spec
}

type slimTemplate struct {
	Metadata slimMeta    `json:"metadata"`
	Spec     slimPodSpec `json:"spec"`
}

func (t *slimTemplate) template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: t.Metadata.objectMeta(), Spec: t.Spec.podSpec()}
}

type slimPod struct {
	Metadata slimMeta      `json:"metadata"`
	Spec     slimPodSpec   `json:"spec"`
	Status   slimPodStatus `json:"status"`
}

// slimPodStatus: the phase says whether a pod has finished (a finished pod
// may leave its policies).
type slimPodStatus struct {
	Phase corev1.PodPhase `json:"phase"`
}

type slimWorkload struct {
	Metadata slimMeta `json:"metadata"`
	Spec     struct {
		Template    *slimTemplate `json:"template"`
		JobTemplate struct {
			Spec struct {
				Template slimTemplate `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// slimTarget returns the slim value to decode obj's JSON into and the
// function that fills obj from it afterwards; ok is false for the kinds it
// does not slim (Services and endpoints are decoded whole: they are
// small). Every workload of internal/kinds is slimmed through its
// template's path and setter.
func slimTarget(obj runtime.Object) (target any, fill func(), ok bool) {
	if o, isPod := obj.(*corev1.Pod); isPod {
		s := &slimPod{}
		return s, func() {
			o.ObjectMeta, o.Spec = s.Metadata.objectMeta(), s.Spec.podSpec()
			o.Status.Phase = s.Status.Phase
		}, true
	}
	k, known := kinds.Of(obj)
	if !known || k.Role != kinds.RoleWorkload {
		return nil, nil, false
	}
	s := &slimWorkload{}
	return s, func() { s.fill(k, obj.(client.Object)) }, true
}

// fill copies the workload's metadata and pod template into obj, the
// template from where its kind keeps it.
func (s *slimWorkload) fill(k *kinds.Kind, obj client.Object) {
	m := &s.Metadata
	obj.SetName(m.Name)
	obj.SetGenerateName(m.GenerateName)
	obj.SetNamespace(m.Namespace)
	obj.SetLabels(m.Labels)
	obj.SetDeletionTimestamp(m.DeletionTimestamp)
	t, _ := s.templateAt(k.TemplatePath)
	if t == nil {
		k.SetTemplate(obj, nil)
		return
	}
	tmpl := t.template()
	k.SetTemplate(obj, &tmpl)
}

// templateAt returns the decoded template at a kind's TemplatePath; ok is
// false for a path slimWorkload does not decode (a test checks every
// kind's).
func (s *slimWorkload) templateAt(path []string) (t *slimTemplate, ok bool) {
	switch strings.Join(path, ".") {
	case "spec.template":
		return s.Spec.Template, true
	case "spec.jobTemplate.spec.template":
		return &s.Spec.JobTemplate.Spec.Template, true
	}
	return nil, false
}

// decodeSlim fills obj with what the rules read, with encoding/json/v2: one
// pass, no validity pre-scan, names matched exactly as the API server
// writes them; ok is false for the kinds it does not slim. On a decoding
// error it decodes obj whole, for the error message to name the real type
// (malformed requests are rare, the API server sends none).
func decodeSlim(raw []byte, obj runtime.Object) (bool, error) {
	target, fill, ok := slimTarget(obj)
	if !ok {
		return false, nil
	}
	if err := jsonv2.Unmarshal(raw, target, decodeOptions); err != nil {
		return true, json.Unmarshal(raw, obj)
	}
	fill()
	return true, nil
}
