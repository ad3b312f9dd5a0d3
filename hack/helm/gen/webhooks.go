package main

import (
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// checkWebhookDiff checks that the cert-manager overlay only adds
// annotations to the webhook configuration, and returns them.
func checkWebhookDiff(d, cm object) (*yaml.Node, error) {
	ann := get(get(cm.node, "metadata"), "annotations")
	if ann == nil || get(get(d.node, "metadata"), "annotations") != nil {
		return nil, fmt.Errorf("%s: expected annotations in the cert-manager overlay only", d.key())
	}
	a, err := decode(d.node)
	if err != nil {
		return nil, err
	}
	b, err := decode(cm.node)
	if err != nil {
		return nil, err
	}
	delete(b.(map[string]any)["metadata"].(map[string]any), "annotations")
	if !reflect.DeepEqual(a, b) {
		return nil, fmt.Errorf("%s: config/overlays/cert-manager changes more than its annotations; teach hack/helm/gen about it", d.key())
	}
	return ann, nil
}

func editWebhooks(p *placeholders, m *yaml.Node, ann *yaml.Node, v *valuesDefaults) error {
	annText, err := marshal(ann)
	if err != nil {
		return err
	}
	annText = strings.ReplaceAll(annText, kustomizeNamespace, "{{ .Release.Namespace }}")
	set(get(m, "metadata"), p.Block(func(prefix string) string {
		n := indentOf(prefix)
		return certManagerIf + "\n" + strings.Repeat(" ", n) + "annotations:\n" + indentText(annText, n+2) + "\n{{- end }}"
	}), scalar(""))
	// The install's configuration has no webhooks: the manager registers
	// them (--webhook-failure-policy, --webhook-timeout-seconds,
	// --webhook-excluded-namespaces, set in the Deployment's args by
	// editDeployment).
	if hooks := get(m, "webhooks"); hooks != nil && len(hooks.Content) > 0 {
		return fmt.Errorf("the ValidatingWebhookConfiguration of config/webhook must have no webhooks (the manager registers them)")
	}
	v.failurePolicy = "Fail"
	v.webhookTimeout = "5"
	v.excludeDefaults = []string{"kube-system", "kube-node-lease", "kube-public", kustomizeNamespace}
	return nil
}
