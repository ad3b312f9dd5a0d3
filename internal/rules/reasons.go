package rules

// ObjectReasons are the reasons of the findings Evaluate and Audit report
// about an object, whatever the caller (loopguard check, audit and test,
// the controllers' status): the rule list of SARIF, the reasons docs/cli.md
// documents. The order is fixed (the SARIF rule indices follow it).
var ObjectReasons = []string{
	ReasonContainerPort, ReasonHostPort, ReasonHostNetwork,
	ReasonServiceTarget, ReasonSelectedByService, ReasonEndpointTarget,
}

// AdmissionReasons are the reasons only Review reports: they judge a
// change (an UPDATE, a review cut short), not an object.
var AdmissionReasons = []string{ReasonLeavesProtection, ReasonReviewIncomplete}

// RuntimeReasons are the reasons of what the node agents observed and the
// engine judges (UnexpectedClients): not about an object, so neither the
// CLI nor SARIF reports them; the runtime controller does.
var RuntimeReasons = []string{ReasonUnexpectedClient}
