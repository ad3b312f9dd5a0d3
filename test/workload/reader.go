// The reviewed namespace's existing pods and Services, and Reader, the
// in-memory client.Reader that serves them.

package workload

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reader is a tiny in-memory client.Reader over pods and Services. Like the
// informer cache read with client.UnsafeDisableDeepCopy, List filters by
// namespace and label selector and copies the matching objects' top-level
// structs into the list, sharing everything they point to: treat the
// results as read-only.
type Reader struct {
	Pods     []corev1.Pod
	Services []corev1.Service
}

var _ client.Reader = &Reader{}

// NewReader returns a Reader over Existing().
func NewReader() *Reader {
	pods, svcs := Existing()
	return &Reader{Pods: pods, Services: svcs}
}

// Get implements client.Reader for pods and Services.
func (r *Reader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	switch o := obj.(type) {
	case *corev1.Pod:
		for i := range r.Pods {
			if r.Pods[i].Namespace == key.Namespace && r.Pods[i].Name == key.Name {
				*o = r.Pods[i]
				return nil
			}
		}
		return apierrors.NewNotFound(corev1.Resource("pods"), key.Name)
	case *corev1.Service:
		for i := range r.Services {
			if r.Services[i].Namespace == key.Namespace && r.Services[i].Name == key.Name {
				*o = r.Services[i]
				return nil
			}
		}
		return apierrors.NewNotFound(corev1.Resource("services"), key.Name)
	}
	return fmt.Errorf("workload.Reader: unsupported type %T", obj)
}

// List implements client.Reader for PodList and ServiceList, honouring
// InNamespace and label selectors.
func (r *Reader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	match := func(m metav1.ObjectMeta) bool {
		return (o.Namespace == "" || m.Namespace == o.Namespace) &&
			(o.LabelSelector == nil || o.LabelSelector.Matches(labels.Set(m.Labels)))
	}
	switch l := list.(type) {
	case *corev1.PodList:
		l.Items = l.Items[:0]
		for i := range r.Pods {
			if match(r.Pods[i].ObjectMeta) {
				l.Items = append(l.Items, r.Pods[i])
			}
		}
		return nil
	case *corev1.ServiceList:
		l.Items = l.Items[:0]
		for i := range r.Services {
			if match(r.Services[i].ObjectMeta) {
				l.Items = append(l.Items, r.Services[i])
			}
		}
		return nil
	case *appsv1.DeploymentList, *appsv1.ReplicaSetList, *appsv1.StatefulSetList, *appsv1.DaemonSetList,
		*batchv1.JobList, *batchv1.CronJobList, *corev1.ReplicationControllerList:
		return meta.SetList(list, nil) // this workload has pods and Services only
	}
	return fmt.Errorf("workload.Reader: unsupported list type %T", list)
}

var cartLabels = map[string]string{
	"app":                       "cart",
	"app.kubernetes.io/part-of": "shop",
	"pod-template-hash":         "7d9c8b6f5",
	"team":                      "checkout",
	"tier":                      "backend",
	"version":                   "v1.4.2",
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Existing returns the pods and Services already in the cluster, as the
// cache holds them (slimmed like internal/slim does): three cart pods
// serving http and metrics, two web pods, Services for both, and a few
// objects of another namespace.
func Existing() ([]corev1.Pod, []corev1.Service) {
	var pods []corev1.Pod
	for _, ns := range []string{Namespace, "billing"} {
		for _, suffix := range []string{"x2k4q", "b7m2z", "q9w8e"} {
			pods = append(pods, corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9c8b6f5-" + suffix, Namespace: ns, Labels: copyMap(cartLabels)},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "cart",
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
						{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
					},
				}}},
			})
		}
		for _, suffix := range []string{"0", "1"} {
			pods = append(pods, corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web-" + suffix, Namespace: ns, Labels: map[string]string{"app": "web", "tier": "frontend"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "web",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				}}},
			})
		}
	}
	svc := func(ns, name string, sel map[string]string, ports ...corev1.ServicePort) corev1.Service {
		return corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: sel, Ports: ports, Type: corev1.ServiceTypeClusterIP},
		}
	}
	var svcs []corev1.Service
	for _, ns := range []string{Namespace, "billing"} {
		svcs = append(svcs,
			svc(ns, "cart", map[string]string{"app": "cart"},
				corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}),
			svc(ns, "cart-metrics", map[string]string{"app": "cart", "tier": "backend"},
				corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}),
			svc(ns, "web", map[string]string{"app": "web"},
				corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}),
		)
	}
	return pods, svcs
}

// ---------------------------------------------------------------------------
// The reviewed objects
// ---------------------------------------------------------------------------
