package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EnforcementAction says what admission does with an object that would expose
// a protected port.
// +kubebuilder:validation:Enum=Deny;Warn;Audit
type EnforcementAction string

const (
	// ActionDeny rejects the request with the reason.
	ActionDeny EnforcementAction = "Deny"
	// ActionWarn admits the request and returns admission warnings, which
	// kubectl prints.
	ActionWarn EnforcementAction = "Warn"
	// ActionAudit admits the request silently; the violation is logged,
	// counted and reported in status by the audit.
	ActionAudit EnforcementAction = "Audit"
)

// HostNetworkAction says what to do with a selected pod that uses the node's
// network namespace.
// +kubebuilder:validation:Enum=Deny;Audit
type HostNetworkAction string

const (
	// HostNetworkDeny treats a selected hostNetwork pod as an exposure, under
	// the policy's enforcementAction.
	HostNetworkDeny HostNetworkAction = "Deny"
	// HostNetworkAudit admits selected hostNetwork pods and only reports them.
	HostNetworkAudit HostNetworkAction = "Audit"
)

// NetworkPolicyMode says whether loopguard manages a NetworkPolicy for the
// selected pods.
// +kubebuilder:validation:Enum=Managed;Admin;Disabled
type NetworkPolicyMode string

const (
	// NetworkPolicyManaged keeps a NetworkPolicy that admits ingress to the
	// selected pods on every port except the protected ones.
	NetworkPolicyManaged NetworkPolicyMode = "Managed"
	// NetworkPolicyAdmin (ClusterLoopbackService only) keeps the managed
	// NetworkPolicies and also an AdminNetworkPolicy
	// (policy.networking.k8s.io/v1alpha1) whose Deny rule drops traffic from
	// every pod to the protected ports before any namespace NetworkPolicy is
	// consulted, so no namespace owner can re-open them. It needs the
	// AdminNetworkPolicy CRD and a network plugin that implements it.
	NetworkPolicyAdmin NetworkPolicyMode = "Admin"
	// NetworkPolicyDisabled manages no NetworkPolicy (and removes one that
	// loopguard created before).
	NetworkPolicyDisabled NetworkPolicyMode = "Disabled"
)

// PortForwardAction says what the webhook does with kubectl port-forward to
// a selected pod.
// +kubebuilder:validation:Enum=Deny;Audit;Allow
type PortForwardAction string

const (
	// PortForwardDeny refuses port-forward to selected pods, except for the
	// allowed subjects.
	PortForwardDeny PortForwardAction = "Deny"
	// PortForwardAudit admits it and records who did it.
	PortForwardAudit PortForwardAction = "Audit"
	// PortForwardAllow admits it; it is still logged.
	PortForwardAllow PortForwardAction = "Allow"
)

// SubjectKind is the kind of a subject allowed to port-forward.
// +kubebuilder:validation:Enum=User;Group;ServiceAccount
type SubjectKind string

// Subject kinds.
const (
	SubjectUser           SubjectKind = "User"
	SubjectGroup          SubjectKind = "Group"
	SubjectServiceAccount SubjectKind = "ServiceAccount"
)

// Subject is a user, group or ServiceAccount.
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? has(self.__namespace__) && self.__namespace__ != '' : !has(self.__namespace__)",message="namespace is required for a ServiceAccount and not allowed otherwise"
type Subject struct {
	// kind of subject: User, Group or ServiceAccount.
	// +required
	Kind SubjectKind `json:"kind"`
	// name of the user, group or ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`
	// namespace of the ServiceAccount.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// PortForwardSpec controls kubectl port-forward to the selected pods. A
// port-forward reaches the pod's loopback directly (the kubelet connects to
// localhost inside the pod's network namespace), so it bypasses every
// NetworkPolicy. The forwarded ports are not known at admission time, so
// the decision is per pod, never per port. The same action and allowed
// subjects decide the API server's proxy (pods/proxy, services/proxy) to a
// protected port of a selected pod; a proxy to another port is untouched.
type PortForwardSpec struct {
	// action: Deny (default) refuses port-forward to selected pods except
	// for the allowed subjects; Audit admits it and records it; Allow
	// admits it.
	// +kubebuilder:default=Deny
	// +optional
	Action PortForwardAction `json:"action,omitempty"`

	// allowed are the subjects who may still port-forward to selected pods
	// when action is Deny, for break-glass debugging.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Allowed []Subject `json:"allowed,omitempty"`
}

// LoopbackPort is a port, or a range of ports, that the selected pods serve on
// loopback (127.0.0.1 or ::1) only.
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || self.endPort >= self.port",message="endPort must be greater than or equal to port"
type LoopbackPort struct {
	// port is the protected port number, or the first port of a range when
	// endPort is set.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// endPort, when set, makes this entry the range port..endPort
	// (inclusive). It must be greater than or equal to port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	EndPort *int32 `json:"endPort,omitempty"`

	// protocol of the port: TCP, UDP or SCTP.
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	// +kubebuilder:default=TCP
	// +optional
	Protocol corev1.Protocol `json:"protocol,omitempty"`

	// name is an optional IANA service name (lowercase letters, digits and
	// '-', at most 15 characters) for the port. A Service whose targetPort
	// names it, or names a containerPort of this number, exposes the port
	// just as a numeric targetPort does.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`

	// clients, for a TCP port, are the names of the pod's containers
	// expected to connect to it on loopback. When the node agent samples a
	// connection from another container, or from a process outside the
	// pod's containers (a kubectl port-forward, an nsenter from the node),
	// the policy reports an unexpected-client finding. Unset: any container
	// of the pod; a client outside them is a finding all the same. The
	// agent samples at each scan: a connection shorter than its interval
	// is not seen (docs/design.md).
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Clients []string `json:"clients,omitempty"`
}

// LoopbackServiceSpec declares which pods serve which ports on loopback only,
// and how loopguard enforces it.
type LoopbackServiceSpec struct {
	// podSelector selects the pods that serve the ports on loopback only. It
	// is required; an empty selector ({}) selects every pod in the namespace.
	// +required
	PodSelector metav1.LabelSelector `json:"podSelector"`

	// ports are the loopback-only ports: 1 to 64 entries, unique by port and
	// protocol. A pod that declares one as a containerPort, a Service that
	// targets one, and a hostNetwork pod are exposures.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, q.port == p.port && q.protocol == p.protocol))",message="ports must be unique by port and protocol"
	// +listType=atomic
	// +required
	Ports []LoopbackPort `json:"ports"`

	// enforcementAction is what admission does with an exposure: Deny
	// rejects it, Warn admits it with a warning, Audit admits it and only
	// reports it. Roll out with Audit or Warn, then switch to Deny.
	// +kubebuilder:default=Deny
	// +optional
	EnforcementAction EnforcementAction `json:"enforcementAction,omitempty"`

	// hostNetwork says what to do with a selected pod that sets
	// hostNetwork: true. Its loopback is the node's, shared with every
	// hostNetwork pod and node process, and NetworkPolicy does not apply to
	// it. Deny treats it as an exposure under enforcementAction; Audit only
	// reports it.
	// +kubebuilder:default=Deny
	// +optional
	HostNetwork HostNetworkAction `json:"hostNetwork,omitempty"`

	// networkPolicy says whether loopguard keeps a NetworkPolicy that blocks
	// ingress to the protected ports of the selected pods (Managed), also an
	// AdminNetworkPolicy that namespace NetworkPolicies cannot override
	// (Admin, ClusterLoopbackService only), or nothing (Disabled).
	// +kubebuilder:default=Managed
	// +optional
	NetworkPolicy NetworkPolicyMode `json:"networkPolicy,omitempty"`

	// portForward controls kubectl port-forward to the selected pods, which
	// reaches their loopback directly, and the API server's proxy
	// (pods/proxy, services/proxy) to a protected port of theirs, which
	// reaches it on the pod IP past every NetworkPolicy. By default both
	// are denied.
	// +kubebuilder:default={action: Deny}
	// +optional
	PortForward *PortForwardSpec `json:"portForward,omitempty"`

	// exec controls kubectl exec and kubectl attach (pods/exec and
	// pods/attach) to the selected pods: a process inside the pod reaches
	// its loopback. By default it is audited: admitted, and recorded as an
	// Event on this policy naming the user, the verb and the pod.
	// +kubebuilder:default={action: Audit}
	// +optional
	Exec *AccessSpec `json:"exec,omitempty"`

	// debug controls kubectl debug on the selected pods: an ephemeral
	// container (pods/ephemeralcontainers) shares the pod's network
	// namespace, and so its loopback. By default it is audited: admitted,
	// and recorded as an Event on this policy naming the user and the pod.
	// +kubebuilder:default={action: Audit}
	// +optional
	Debug *AccessSpec `json:"debug,omitempty"`
}

// Violation is one object that exposes a protected port.
type Violation struct {
	// kind of the object: Pod, Deployment, Service, ...
	Kind string `json:"kind"`
	// namespace of the object.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the object.
	Name string `json:"name"`
	// port is the protected port the object exposes.
	// +optional
	Port int32 `json:"port,omitempty"`
	// protocol of the port.
	// +optional
	Protocol corev1.Protocol `json:"protocol,omitempty"`
	// field is the path of the offending field in the object.
	// +optional
	Field string `json:"field,omitempty"`
	// reason is a machine-readable code: ContainerPort, ServiceTarget,
	// HostNetwork, ...
	Reason string `json:"reason"`
	// message says what is wrong and what to do instead.
	Message string `json:"message"`
}

// HostNetworkPod is a selected pod that uses the node's network namespace.
type HostNetworkPod struct {
	// namespace of the pod.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the pod.
	Name string `json:"name"`
	// node the pod runs on, empty until scheduled.
	// +optional
	Node string `json:"node,omitempty"`
}

// NodeMate is a pod that can enter the network namespace of a selected pod
// on the same node, and so reach its loopback-only ports without any
// NetworkPolicy seeing it: privileged, hostPID with SYS_ADMIN or
// SYS_PTRACE, a hostPath mount of /proc, of the network namespace files or
// of a container runtime socket, or hostNetwork with NET_ADMIN.
type NodeMate struct {
	// namespace of the pod.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the pod.
	Name string `json:"name"`
	// node both pods run on.
	Node string `json:"node"`
	// reasons say how it can enter other pods' network namespaces, e.g.
	// "privileged container debug", "hostPath /proc (volume proc)" (at most
	// 10 listed).
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Reasons []string `json:"reasons,omitempty"`
}

// LoopbackServiceStatus is what loopguard observed and did.
type LoopbackServiceStatus struct {
	// observedGeneration is the generation of the spec this status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, NetworkPolicyEffective, RuntimeVerified and Compliant.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// protectedPorts summarizes spec.ports, e.g. "15000/TCP, 6060-6069/TCP".
	// +optional
	ProtectedPorts string `json:"protectedPorts,omitempty"`

	// matchedPods is the number of pods the policy selects.
	// +optional
	MatchedPods *int32 `json:"matchedPods,omitempty"`

	// violationCount is the total number of violations; violations lists at
	// most the first 50 of them.
	// +optional
	ViolationCount *int32 `json:"violationCount,omitempty"`

	// violations are existing objects that expose a protected port.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Violations []Violation `json:"violations,omitempty"`

	// networkPolicies are the names of the NetworkPolicies loopguard manages
	// for this policy (namespace/name for a cluster policy).
	// +listType=atomic
	// +optional
	NetworkPolicies []string `json:"networkPolicies,omitempty"`

	// hostNetworkPods are selected pods that use the node's network
	// namespace (at most 50 listed).
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	HostNetworkPods []HostNetworkPod `json:"hostNetworkPods,omitempty"`

	// nodeMateCount is the number of pods that can enter the network
	// namespace of a selected pod on its node; nodeMates lists at most the
	// first 50 of them.
	// +optional
	NodeMateCount *int32 `json:"nodeMateCount,omitempty"`

	// nodeMates are pods, in any namespace, that can enter the network
	// namespace of a selected pod on the same node (privileged, hostPID
	// with SYS_ADMIN or SYS_PTRACE, hostPath of /proc, of the network
	// namespace files or of a runtime socket, hostNetwork with NET_ADMIN):
	// they reach its loopback-only ports, which no NetworkPolicy sees.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	NodeMates []NodeMate `json:"nodeMates,omitempty"`

	// runtime is what the node agents observed: selected pods whose
	// protected ports really listen beyond loopback. Absent when no agent
	// reports.
	// +optional
	Runtime *RuntimeStatus `json:"runtime,omitempty"`
}

// MaxStatusViolations bounds status.violations, status.hostNetworkPods and
// status.nodeMates so that a policy object stays small whatever the cluster
// holds.
const MaxStatusViolations = 50

// MaxNodeMateReasons bounds the reasons of one status.nodeMates entry.
const MaxNodeMateReasons = 10

// Condition types and reasons.
const (
	// ConditionReady is True when loopguard has reconciled the current spec.
	ConditionReady = "Ready"
	// ConditionNetworkPolicyEffective is True when the managed NetworkPolicy
	// exists and no other NetworkPolicy re-opens a protected port.
	ConditionNetworkPolicyEffective = "NetworkPolicyEffective"
	// ConditionCompliant is True when no existing object exposes a
	// protected port.
	ConditionCompliant = "Compliant"

	ReasonReconciled            = "Reconciled"
	ReasonReconcileError        = "ReconcileError"
	ReasonInvalidSelector       = "InvalidSelector"
	ReasonNetworkPolicyApplied  = "NetworkPolicyApplied"
	ReasonNetworkPolicyDisabled = "NetworkPolicyDisabled"
	ReasonConflictingPolicies   = "ConflictingNetworkPolicies"
	// ReasonAdminNetworkPolicyUnavailable: networkPolicy is Admin but the
	// cluster has no AdminNetworkPolicy API (the NetworkPolicies are kept).
	ReasonAdminNetworkPolicyUnavailable = "AdminNetworkPolicyUnavailable"
	// ReasonAdminNetworkPolicyApplied: in Admin mode the AdminNetworkPolicy
	// keeps every pod out although NetworkPolicies conflict (they still
	// admit nodes and external clients, as the message says).
	ReasonAdminNetworkPolicyApplied = "AdminNetworkPolicyApplied"
	// ReasonNetworkPolicyNameTaken: in some namespaces a NetworkPolicy of
	// the managed name exists and is not owned by the policy; loopguard
	// does not take it over, so ingress is not blocked there.
	ReasonNetworkPolicyNameTaken = "NetworkPolicyNameTaken"
	// ReasonPartiallyReconciled: the policy failed in some namespaces (the
	// Ready message names them) and was enforced in the others; retried.
	ReasonPartiallyReconciled = "PartiallyReconciled"
	// ReasonNodeMate is the Event reason for a pod that can enter the
	// network namespace of a selected pod on its node.
	ReasonNodeMate        = "NodeMate"
	ReasonNoViolations    = "NoViolations"
	ReasonViolationsFound = "ViolationsFound"
)
