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
	fp := p.Inline("{{ .Values.webhook.failurePolicy }}")
	to := p.Inline("{{ .Values.webhook.timeoutSeconds }}")
	for _, wh := range get(m, "webhooks").Content {
		if f := get(wh, "failurePolicy"); f != nil {
			if v.failurePolicy != "" && v.failurePolicy != f.Value {
				return fmt.Errorf("webhooks differ in failurePolicy")
			}
			v.failurePolicy = f.Value
		}
		set(wh, "failurePolicy", scalar(fp))
		if t := get(wh, "timeoutSeconds"); t != nil {
			if v.webhookTimeout != "" && v.webhookTimeout != t.Value {
				return fmt.Errorf("webhooks differ in timeoutSeconds")
			}
			v.webhookTimeout = t.Value
		}
		set(wh, "timeoutSeconds", scalar(to))
		sel := get(wh, "namespaceSelector")
		for _, e := range get(sel, "matchExpressions").Content {
			if get(e, "key").Value != "kubernetes.io/metadata.name" || get(e, "operator").Value != "NotIn" {
				continue
			}
			var defaults []string
			var list []string
			for _, val := range get(e, "values").Content {
				defaults = append(defaults, val.Value)
				if val.Value == kustomizeNamespace {
					list = append(list, ".Release.Namespace")
				} else {
					list = append(list, fmt.Sprintf("%q", val.Value))
				}
			}
			if v.excludeDefaults != nil && !reflect.DeepEqual(v.excludeDefaults, defaults) {
				return fmt.Errorf("webhooks differ in their excluded namespaces")
			}
			v.excludeDefaults = defaults
			expr := "concat (list " + strings.Join(list, " ") + ") .Values.excludeNamespaces | uniq"
			set(e, "values", scalar(p.Block(func(prefix string) string {
				n := indentOf(prefix)
				return fmt.Sprintf("%svalues:\n%s{{- %s | toYaml | nindent %d }}", strings.Repeat(" ", n), strings.Repeat(" ", n), expr, n)
			})))
		}
	}
	if v.excludeDefaults == nil {
		return fmt.Errorf("no namespaceSelector NotIn kubernetes.io/metadata.name")
	}
	return nil
}
