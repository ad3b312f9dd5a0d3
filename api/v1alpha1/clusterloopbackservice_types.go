package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterLoopbackServiceSpec is a LoopbackServiceSpec applied in every
// namespace that namespaceSelector selects.
type ClusterLoopbackServiceSpec struct {
	// namespaceSelector selects the namespaces the policy applies in. It is
	// required; an empty selector ({}) selects every namespace.
	// +required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// adminPriority is the priority of the AdminNetworkPolicy kept when
	// networkPolicy is Admin (0-1000, lower wins; default 10). Give each
	// Admin policy its own value: the order of AdminNetworkPolicies of
	// equal priority is undefined.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	AdminPriority *int32 `json:"adminPriority,omitempty"`

	LoopbackServiceSpec `json:",inline"`
}

// DefaultAdminPriority is the AdminNetworkPolicy priority when
// spec.adminPriority is unset.
const DefaultAdminPriority int32 = 10

// ClusterLoopbackService declares loopback-only ports for the selected pods
// of every selected namespace; platform teams use it to roll a rule out
// namespace by namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=clbs,categories=loopguard
// +kubebuilder:printcolumn:name="Ports",type=string,JSONPath=`.status.protectedPorts`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.enforcementAction`
// +kubebuilder:printcolumn:name="Matched",type=integer,JSONPath=`.status.matchedPods`
// +kubebuilder:printcolumn:name="Violations",type=integer,JSONPath=`.status.violationCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Enforced")].status`,description="Enforced: the webhook registration covers the policy"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterLoopbackService struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the namespaces, the pods and their loopback-only ports.
	// +required
	Spec ClusterLoopbackServiceSpec `json:"spec"`

	// status is what loopguard observed across the selected namespaces.
	// +optional
	Status LoopbackServiceStatus `json:"status,omitempty"`
}

// ClusterLoopbackServiceList is a list of ClusterLoopbackServices.
// +kubebuilder:object:root=true
type ClusterLoopbackServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterLoopbackService `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterLoopbackService{}, &ClusterLoopbackServiceList{})
}
