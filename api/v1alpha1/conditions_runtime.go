package v1alpha1

// The condition a policy's runtime view sets: what the node agents saw of
// the selected pods' listeners (status.runtime). The runtime controller
// owns it; Compliant summarizes it with the declared violations.
const (
	// ConditionRuntimeVerified is True when every selected running pod was
	// checked by its node's agent, none listens on a protected port beyond
	// loopback and no unexpected client is connected to one; False when one
	// does (reason ListeningBeyondLoopback, which outranks) or one is
	// (reason UnexpectedClient); Unknown when the agents could not tell.
	ConditionRuntimeVerified = "RuntimeVerified"

	// ReasonNotListeningBeyondLoopback: every selected running pod was
	// checked and none listens on a protected port beyond loopback.
	ReasonNotListeningBeyondLoopback = "NotListeningBeyondLoopback"
	// ReasonPodsUnchecked: some selected running pods were not checked (a
	// stale report, or a pod its agent has not scanned yet); none of the
	// checked ones listens beyond loopback.
	ReasonPodsUnchecked = "PodsUnchecked"
	// ReasonUnexpectedClient: a client that the policy does not expect is
	// connected to a selected pod's protected port on loopback (a container
	// that spec.ports[].clients does not list, or a process outside the
	// pod's containers), as the agents sampled it. It is the reason of the
	// Warning Event for each such client too.
	ReasonUnexpectedClient = "UnexpectedClient"
	// ReasonNoNodeBindReports: no node of a selected running pod has a
	// NodeBindReport (no agent installed there).
	ReasonNoNodeBindReports = "NoNodeBindReports"
)
