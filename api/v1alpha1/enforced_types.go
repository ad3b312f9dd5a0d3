package v1alpha1

// The Enforced condition: whether the API server sends loopguard the
// writes and accesses a policy judges (the manager's
// ValidatingWebhookConfiguration covers the policy). The READY column
// shows it. Set by controllers/webhookconfig_controller.go.
const (
	// ConditionEnforced is True once the webhook registration covers the
	// policy: from then on every write it judges is judged.
	ConditionEnforced = "Enforced"
	// ReasonWebhookRegistered: the registration covers the policy.
	ReasonWebhookRegistered = "Registered"
	// ReasonWebhookPending: loopguard has not registered the policy yet
	// (its webhook server does not serve yet, or the write failed).
	ReasonWebhookPending = "RegistrationPending"
	// ReasonWebhookConfigurationMissing: the ValidatingWebhookConfiguration
	// the install creates is absent (uninstalled, or deleted by hand).
	ReasonWebhookConfigurationMissing = "WebhookConfigurationMissing"
	// ReasonNamespaceExcluded: the policy's namespace is never sent to the
	// webhooks (the control plane's and loopguard's own).
	ReasonNamespaceExcluded = "NamespaceExcluded"
)
