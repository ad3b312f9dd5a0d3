package v1alpha1

// AccessAction says what the webhook does with a way into a selected pod
// through the API server: kubectl exec and attach, or an ephemeral
// container (kubectl debug).
// +kubebuilder:validation:Enum=Deny;Audit;Allow
type AccessAction string

const (
	// AccessDeny refuses the access to selected pods, except for the
	// allowed subjects (who are recorded).
	AccessDeny AccessAction = "Deny"
	// AccessAudit admits it and records who did it: an Event on the
	// policy, a log line and a metric.
	AccessAudit AccessAction = "Audit"
	// AccessAllow admits it; it is still logged and counted.
	AccessAllow AccessAction = "Allow"
)

// AccessSpec controls one way into the selected pods through the API
// server. A process that exec or attach reaches, and an ephemeral
// container, run inside the pod's network namespace: they reach the
// loopback-only ports directly, past every NetworkPolicy. The decision is
// per pod and per requester, never per port.
type AccessSpec struct {
	// action: Audit (default) admits the access and records who did it
	// (an Event on this policy naming the user, the verb and the pod);
	// Deny refuses it except for the allowed subjects; Allow admits it
	// (still logged).
	// +kubebuilder:default=Audit
	// +optional
	Action AccessAction `json:"action,omitempty"`

	// allowed are the subjects who may still do it to selected pods when
	// action is Deny, for break-glass debugging; they are recorded as under
	// Audit.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Allowed []Subject `json:"allowed,omitempty"`
}
