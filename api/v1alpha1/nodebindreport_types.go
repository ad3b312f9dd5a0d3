package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Bounds of a NodeBindReport, so that one object per node stays small
// whatever the node runs.
const (
	// MaxReportPods bounds status.pods.
	MaxReportPods = 500
	// MaxReportListeners bounds status.pods[].listeners.
	MaxReportListeners = 64
	// MaxReportErrors bounds status.errors.
	MaxReportErrors = 32
	// MaxDiscoveredPods bounds status.discovery.pods: more than a node's
	// usual pod limit (110), few enough to keep the report far below
	// etcd's object size limit.
	MaxDiscoveredPods = 250
	// MaxDiscoveredListeners bounds status.discovery.pods[].listeners.
	MaxDiscoveredListeners = 32
)

// AddressClass says what an observed listener's address accepts.
// +kubebuilder:validation:Enum=Loopback;Wildcard;PodIP;Other
type AddressClass string

// Address classes of a discovered listener.
const (
	// AddressClassLoopback: 127.0.0.0/8 or ::1 (v4-mapped loopback too):
	// reachable from the pod's own network namespace only.
	AddressClassLoopback AddressClass = "Loopback"
	// AddressClassWildcard: 0.0.0.0 or ::, every address of the pod.
	AddressClassWildcard AddressClass = "Wildcard"
	// AddressClassPodIP: one of the pod's IPs (status.podIPs).
	AddressClassPodIP AddressClass = "PodIP"
	// AddressClassOther: any other address (a node address of a
	// hostNetwork pod, a secondary interface, ...).
	AddressClassOther AddressClass = "Other"
)

// DiscoveredListener is a socket that listens (TCP, SCTP) or is bound
// (UDP) in a pod, on a port that no policy protects for that pod.
type DiscoveredListener struct {
	// protocol of the socket: TCP, UDP or SCTP.
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	// +required
	Protocol corev1.Protocol `json:"protocol"`

	// addressClass is what the address accepts: Loopback, Wildcard, PodIP
	// or Other.
	// +required
	AddressClass AddressClass `json:"addressClass"`

	// address the socket is bound to, as the kernel reports it.
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=64
	// +required
	Address string `json:"address"`

	// port the socket is bound to.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// container is the name of the container whose process owns the socket,
	// empty when the agent could not tell.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Container string `json:"container,omitempty"`

	// process is the owning process's command name (/proc/<pid>/comm),
	// empty when unknown. No PID: a restart would change the report.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Process string `json:"process,omitempty"`
}

// DiscoveredPod is what discovery found listening in one pod.
type DiscoveredPod struct {
	// namespace of the pod.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Namespace string `json:"namespace"`

	// name of the pod.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// uid of the pod.
	// +required
	UID types.UID `json:"uid"`

	// hostNetwork is true when the pod uses the node's network namespace
	// (only sockets of the pod's own processes are listed then).
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`

	// listeners are the pod's listening sockets on ports no policy protects
	// for it, sorted by protocol, port and address (at most 32).
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Listeners []DiscoveredListener `json:"listeners,omitempty"`
}

// DiscoveryStatus is the agent's discovery: what the node's pods listen on
// beyond what policies protect. It is set only when the agent runs with
// --discovery (the chart's agent.discovery.enabled).
type DiscoveryStatus struct {
	// pods with at least one listener, sorted by namespace and name (at
	// most 250; truncated says when more were left out).
	// +kubebuilder:validation:MaxItems=250
	// +listType=map
	// +listMapKey=uid
	// +optional
	Pods []DiscoveredPod `json:"pods,omitempty"`

	// truncated is true when pods, or a pod's listeners, were cut.
	// +optional
	Truncated bool `json:"truncated,omitempty"`
}

// BindListener is one socket in a protected port range that listens (TCP,
// SCTP) or is bound (UDP) on an address other than 127.0.0.0/8 or ::1.
type BindListener struct {
	// protocol of the socket: TCP, UDP or SCTP.
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	// +required
	Protocol corev1.Protocol `json:"protocol"`

	// address the socket is bound to, as the kernel reports it: "0.0.0.0"
	// and "::" for every address, else one IP (the pod IP, a node IP, ...).
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=64
	// +required
	Address string `json:"address"`

	// port the socket is bound to.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// container is the name of the container whose process owns the socket,
	// empty when the agent could not tell.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Container string `json:"container,omitempty"`

	// containerID is the runtime's ID of that container
	// (e.g. containerd://abc...), empty when unknown.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ContainerID string `json:"containerID,omitempty"`

	// pid of the owning process in the node's PID namespace, 0 when unknown.
	// +kubebuilder:validation:Minimum=0
	// +optional
	PID int64 `json:"pid,omitempty"`

	// process is the owning process's command name (/proc/<pid>/comm),
	// empty when unknown.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Process string `json:"process,omitempty"`
}

// MaxReportClients bounds status.pods[].clients.
const MaxReportClients = 32

// BindClient is the client end of an established TCP connection to a
// protected port of the pod on loopback, as the agent sampled it: a
// process of one of the pod's containers, or one outside them (outside:
// a kubectl port-forward, whose connection the container runtime opens
// from the node, or an nsenter from the node). One entry per distinct
// client (port, container or outside, process) while it lasts.
type BindClient struct {
	// port is the protected port the client is connected to.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// container is the name of the pod's container whose process holds the
	// client end; empty when outside is true or unknown.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Container string `json:"container,omitempty"`

	// outside is true when no process of the pod's containers holds the
	// client end.
	// +optional
	Outside bool `json:"outside,omitempty"`

	// process is the client process's command name, empty when unknown.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Process string `json:"process,omitempty"`
}

// PodBindReport is what the agent found in one pod's network namespace.
type PodBindReport struct {
	// namespace of the pod.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Namespace string `json:"namespace"`

	// name of the pod.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// uid of the pod; a report about a pod of the same name but another UID
	// (a replaced StatefulSet pod) is not about the current pod.
	// +required
	UID types.UID `json:"uid"`

	// hostNetwork is true when the pod uses the node's network namespace:
	// its listeners are the node's, shared with every hostNetwork pod.
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`

	// listeners are the sockets in the pod's protected port ranges that
	// listen beyond loopback, sorted by protocol, port and address; empty
	// when the pod was checked and is clean (at most 64 listed).
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Listeners []BindListener `json:"listeners,omitempty"`

	// clients are the clients connected to the pod's protected TCP ports on
	// loopback at the scan, sorted by port, container and process (at most
	// 32). A connection shorter than the scan interval is not seen.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Clients []BindClient `json:"clients,omitempty"`

	// unchecked says why the pod could not be checked (no running process
	// yet, network namespace gone, ...); empty when it was checked.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Unchecked string `json:"unchecked,omitempty"`
}

// NodeBindReportStatus is the result of the agent's last scan of its node.
type NodeBindReportStatus struct {
	// scannedAt is when the last written scan ended. A report whose
	// scannedAt is older than refreshInterval plus two scanIntervals is
	// stale: its agent is gone, stuck or cannot write.
	// +optional
	ScannedAt *metav1.Time `json:"scannedAt,omitempty"`

	// scanDuration is how long the last scan took.
	// +optional
	ScanDuration *metav1.Duration `json:"scanDuration,omitempty"`

	// scanInterval is the agent's period between scans; readers use it to
	// judge whether the report is stale.
	// +optional
	ScanInterval *metav1.Duration `json:"scanInterval,omitempty"`

	// refreshInterval is the longest the agent goes without rewriting a
	// report whose findings did not change (a changed one is written at
	// once), so scannedAt may be that old on a quiet node. Readers consider
	// the report stale when scannedAt is older than refreshInterval plus
	// two scan intervals; unset means 5m, the agent's default.
	// +optional
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`

	// podsChecked is the number of pods the last scan checked (pods listed
	// with an unchecked reason are not counted).
	// +kubebuilder:validation:Minimum=0
	// +optional
	PodsChecked int32 `json:"podsChecked,omitempty"`

	// podsBeyondLoopback is the number of checked pods with at least one
	// listener in a protected range beyond loopback.
	// +kubebuilder:validation:Minimum=0
	// +optional
	PodsBeyondLoopback int32 `json:"podsBeyondLoopback,omitempty"`

	// pods are the pods the last scan looked at, sorted by namespace and
	// name, with their findings (at most 500; truncated says when more were
	// left out, findings first).
	// +kubebuilder:validation:MaxItems=500
	// +listType=map
	// +listMapKey=uid
	// +optional
	Pods []PodBindReport `json:"pods,omitempty"`

	// truncated is true when pods does not list every pod scanned.
	// +optional
	Truncated bool `json:"truncated,omitempty"`

	// errors are scan errors that are not about one pod (at most 32).
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	// +optional
	Errors []string `json:"errors,omitempty"`

	// discovery is what the node's pods listen on, on ports that no policy
	// protects for them (loopguard discover reads it); unset when the
	// agent's discovery is off.
	// +optional
	Discovery *DiscoveryStatus `json:"discovery,omitempty"`

	// conditions of the agent on this node (e.g. Ready).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodeBindReport is the loopguard node agent's view of which pods on one
// node listen on protected ports beyond loopback. Its name is the node's
// name. Only that node's agent writes it: a ValidatingAdmissionPolicy
// admits the agent's requests only when its ServiceAccount token is bound
// to a pod on the node of the same name (the NodeRestriction pattern), so a
// compromised agent cannot forge another node's findings. The controller
// reads it into the status.runtime of the policies that protect the pods.
// The agent sets an ownerReference to its Node, so the report goes with the
// node.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nbr,categories=loopguard
// +kubebuilder:printcolumn:name="Pods Checked",type=integer,JSONPath=`.status.podsChecked`
// +kubebuilder:printcolumn:name="Beyond Loopback",type=integer,JSONPath=`.status.podsBeyondLoopback`
// +kubebuilder:printcolumn:name="Scanned",type=date,JSONPath=`.status.scannedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeBindReport struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is the result of the agent's last scan of the node.
	// +optional
	Status NodeBindReportStatus `json:"status,omitempty"`
}

// NodeBindReportList is a list of NodeBindReports.
// +kubebuilder:object:root=true
type NodeBindReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeBindReport `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodeBindReport{}, &NodeBindReportList{})
}

// Condition type and reason of a policy's runtime findings.
const (
	// ReasonListeningBeyondLoopback: a selected pod listens on a protected
	// port beyond loopback, as its node's agent observed.
	ReasonListeningBeyondLoopback = "ListeningBeyondLoopback"
)
