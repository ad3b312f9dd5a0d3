package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

// RuntimeStatus is what the node agents observed of the policy's selected
// pods: which of them really listen on a protected port beyond loopback,
// and which unexpected clients are connected to a protected port on
// loopback.
// It comes from the NodeBindReports of the nodes the pods run on; a report
// that is stale (its node is gone, or it is older than a few scan
// intervals) does not count, and its pods are unchecked.
type RuntimeStatus struct {
	// podsChecked is the number of selected pods that a fresh report says
	// were checked.
	// +kubebuilder:validation:Minimum=0
	// +optional
	PodsChecked int32 `json:"podsChecked,omitempty"`

	// podsUnchecked is the number of selected running pods no fresh report
	// says were checked: no agent on their node, a stale report, or a pod
	// the agent could not check (no running process yet, ...).
	// +kubebuilder:validation:Minimum=0
	// +optional
	PodsUnchecked int32 `json:"podsUnchecked,omitempty"`

	// podsBeyondLoopback is the number of selected pods with at least one
	// protected port listening beyond loopback; listeners lists at most the
	// first 50 findings.
	// +kubebuilder:validation:Minimum=0
	// +optional
	PodsBeyondLoopback int32 `json:"podsBeyondLoopback,omitempty"`

	// listeners are the protected ports that listen beyond loopback, sorted
	// by namespace, pod, protocol, port and address.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Listeners []RuntimeListener `json:"listeners,omitempty"`

	// unexpectedClientCount is the number of distinct unexpected clients of
	// the selected pods' protected ports; unexpectedClients lists at most
	// the first 50.
	// +kubebuilder:validation:Minimum=0
	// +optional
	UnexpectedClientCount int32 `json:"unexpectedClientCount,omitempty"`

	// unexpectedClients are the clients connected to a protected TCP port
	// on loopback that the policy does not expect (a container that the
	// port's clients does not list, or a process outside the pod's
	// containers: a port-forward, an nsenter from the node), as the agents
	// sampled them, sorted by namespace, pod, port, container and process.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	UnexpectedClients []RuntimeClient `json:"unexpectedClients,omitempty"`

	// staleNodes are nodes of selected pods whose NodeBindReport is missing
	// or stale (at most 50 listed).
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	StaleNodes []string `json:"staleNodes,omitempty"`
}

// RuntimeListener is one protected port that a selected pod listens on
// beyond loopback, as its node's agent observed.
type RuntimeListener struct {
	// namespace of the pod.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// pod is the pod's name.
	Pod string `json:"pod"`
	// node the pod runs on; for a hostNetwork pod the socket is the node's.
	// +optional
	Node string `json:"node,omitempty"`
	// hostNetwork is true when the pod uses the node's network namespace.
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// container whose process owns the socket, empty when unknown.
	// +optional
	Container string `json:"container,omitempty"`
	// process is the owning process's command name, empty when unknown.
	// +optional
	Process string `json:"process,omitempty"`
	// protocol of the socket.
	Protocol corev1.Protocol `json:"protocol"`
	// address the socket is bound to ("0.0.0.0", "::", the pod IP, ...).
	Address string `json:"address"`
	// port the socket is bound to.
	Port int32 `json:"port"`
}

// RuntimeClient is one unexpected client of a selected pod's protected
// port, as its node's agent sampled it (NodeBindReport
// status.pods[].clients) and the policy's spec.ports[].clients judges it.
type RuntimeClient struct {
	// namespace of the pod.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// pod is the pod's name.
	Pod string `json:"pod"`
	// node the pod runs on.
	// +optional
	Node string `json:"node,omitempty"`
	// port is the protected port the client is connected to (TCP).
	Port int32 `json:"port"`
	// container of the pod whose process holds the client end; empty when
	// outside is true or the agent could not tell.
	// +optional
	Container string `json:"container,omitempty"`
	// outside is true when no process of the pod's containers holds the
	// client end (a kubectl port-forward, an nsenter from the node).
	// +optional
	Outside bool `json:"outside,omitempty"`
	// process is the client process's command name, empty when unknown.
	// +optional
	Process string `json:"process,omitempty"`
	// field is the policy's field the client contradicts
	// (spec.ports[i].clients).
	// +optional
	Field string `json:"field,omitempty"`
	// message says who is connected and what the policy expects.
	Message string `json:"message"`
}
