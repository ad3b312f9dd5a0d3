package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LoopbackService declares that the selected pods of its namespace serve the
// listed ports on loopback only. loopguard refuses pods, workloads and
// Services that would expose them, keeps a NetworkPolicy that blocks ingress
// to them, and reports what already exposes them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=lbs,categories=loopguard
// +kubebuilder:printcolumn:name="Ports",type=string,JSONPath=`.status.protectedPorts`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.enforcementAction`
// +kubebuilder:printcolumn:name="Matched",type=integer,JSONPath=`.status.matchedPods`
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.violationCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Enforced")].status`,description="Enforced: the webhook registration covers the policy"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LoopbackService struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the pods and their loopback-only ports.
	// +kubebuilder:validation:XValidation:rule="!has(self.networkPolicy) || self.networkPolicy != 'Admin'",message="networkPolicy: Admin needs a ClusterLoopbackService: an AdminNetworkPolicy is cluster-scoped",fieldPath=".networkPolicy"
	// +required
	Spec LoopbackServiceSpec `json:"spec"`

	// status is what loopguard observed.
	// +optional
	Status LoopbackServiceStatus `json:"status,omitempty"`
}

// LoopbackServiceList is a list of LoopbackServices.
// +kubebuilder:object:root=true
type LoopbackServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LoopbackService `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LoopbackService{}, &LoopbackServiceList{})
}
