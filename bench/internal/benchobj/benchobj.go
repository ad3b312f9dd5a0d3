// Package benchobj holds the objects the API-server benchmarks
// (bench/apibench, bench/registrationbench) create: the benchmark pod and
// the same rule as loopguard's benchmark policy written as a
// ValidatingAdmissionPolicy, so every run measures the same thing.
package benchobj

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod is the benchmark pod: labelled app=cart, two containers declaring
// 8080 and 9901 (neither protected). Set a container port to 15000 for one
// that must be refused.
func Pod(generateName, ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: generateName, Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/app:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
			{Name: "envoy", Image: "registry.invalid/envoy:1", Ports: []corev1.ContainerPort{{ContainerPort: 9901}}},
		}},
	}
}

// LoopbackPortVAP is the benchmark rule in CEL: pods labelled app=cart may
// not declare 15000/TCP in any container or init container.
func LoopbackPortVAP(name string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	fail := admissionregistrationv1.Fail
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				}}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: `(object.spec.containers + (has(object.spec.initContainers) ? object.spec.initContainers : [])).all(c, !has(c.ports) || c.ports.all(p, p.containerPort != 15000 || (has(p.protocol) && p.protocol != "TCP")))`,
				Message:    "port 15000/TCP is loopback-only",
			}},
		},
	}
}
