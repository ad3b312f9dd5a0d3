package v1alpha1

// The condition a policy's runtime view sets: what the node agents saw of
// the selected pods' listeners (status.runtime). The runtime controller
// owns it; Compliant summarizes it with the declared violations.
const (
	// ConditionRuntimeVerified is True when every selected running pod was
	// checked by its node's agent and none listens on a protected port
	// beyond loopback; False when one does (reason
	// ListeningBeyondLoopback); Unknown when the agents could not tell.
	ConditionRuntimeVerified = "RuntimeVerified"

	// ReasonNotListeningBeyondLoopback: every selected running pod was
	// checked and none listens on a protected port beyond loopback.
	ReasonNotListeningBeyondLoopback = "NotListeningBeyondLoopback"
	// ReasonPodsUnchecked: some selected running pods were not checked (a
	// stale report, or a pod its agent has not scanned yet); none of the
	// checked ones listens beyond loopback.
	ReasonPodsUnchecked = "PodsUnchecked"
	// ReasonNoNodeBindReports: no node of a selected running pod has a
	// NodeBindReport (no agent installed there).
	ReasonNoNodeBindReports = "NoNodeBindReports"
)
