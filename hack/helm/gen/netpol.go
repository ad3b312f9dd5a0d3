package main

import (
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The webhook's NetworkPolicy (config/components/webhook-networkpolicy,
// rendered through config/overlays/webhook-networkpolicy) renders behind
// webhook.networkPolicy.enabled, with the webhook rule's peers from
// webhook.networkPolicy.apiServerCIDRs and extraFrom and the metrics rule's
// from metricsFrom.
const webhookNetpolIf = `{{- if .Values.webhook.networkPolicy.enabled }}
{{- if not (or .Values.webhook.networkPolicy.apiServerCIDRs .Values.webhook.networkPolicy.extraFrom) }}
{{- fail "webhook.networkPolicy.enabled needs webhook.networkPolicy.apiServerCIDRs (or extraFrom): where the API server's calls to the webhook come from (docs/webhook-auth.md)" }}
{{- end }}`

// webhookNetworkPolicy returns the one object the overlay adds to
// config/default, and fails if it changes anything else.
func webhookNetworkPolicy(defObjs, netpolObjs []object) (object, error) {
	def := map[string]object{}
	for _, o := range defObjs {
		def[o.key()] = o
	}
	var added []object
	for _, o := range netpolObjs {
		d, ok := def[o.key()]
		if !ok {
			added = append(added, o)
			continue
		}
		a, err := decode(d.node)
		if err != nil {
			return object{}, err
		}
		b, err := decode(o.node)
		if err != nil {
			return object{}, err
		}
		if !reflect.DeepEqual(a, b) {
			return object{}, fmt.Errorf("%s differs between config/default and config/overlays/webhook-networkpolicy; teach hack/helm/gen about it", o.key())
		}
	}
	if len(added) != 1 || added[0].kind != "NetworkPolicy" {
		keys := make([]string, len(added))
		for i, o := range added {
			keys[i] = o.key()
		}
		return object{}, fmt.Errorf("config/overlays/webhook-networkpolicy adds %v to config/default, want one NetworkPolicy", keys)
	}
	return added[0], nil
}

// editWebhookNetpol swaps the peers of the rule for the port named webhook
// and of the one for the port named metrics for the values'.
func editWebhookNetpol(p *placeholders, m *yaml.Node) error {
	seen := map[string]bool{}
	for _, rule := range get(get(m, "spec"), "ingress").Content {
		ports := get(rule, "ports")
		if ports == nil || len(ports.Content) != 1 {
			return fmt.Errorf("expected one port per ingress rule")
		}
		port := get(ports.Content[0], "port").Value
		seen[port] = true
		del(rule, "from")
		switch port {
		case "webhook":
			set(rule, "from", scalar(p.Block(func(prefix string) string {
				n := indentOf(prefix)
				ind := strings.Repeat(" ", n)
				return ind + "from:\n" +
					"{{- range .Values.webhook.networkPolicy.apiServerCIDRs }}\n" +
					ind + "- ipBlock:\n" + ind + "    cidr: {{ . | quote }}\n" +
					"{{- end }}\n" +
					"{{- with .Values.webhook.networkPolicy.extraFrom }}\n" +
					fmt.Sprintf("%s{{- toYaml . | nindent %d }}\n", ind, n) +
					"{{- end }}"
			})))
		case "metrics":
			set(rule, p.Block(func(prefix string) string {
				n := indentOf(prefix)
				ind := strings.Repeat(" ", n)
				return "{{- with .Values.webhook.networkPolicy.metricsFrom }}\n" +
					ind + "from:\n" +
					fmt.Sprintf("%s{{- toYaml . | nindent %d }}\n", ind, n) +
					"{{- end }}"
			}), scalar(""))
		default:
			return fmt.Errorf("an ingress rule for port %q; teach hack/helm/gen about it", port)
		}
	}
	if !seen["webhook"] || !seen["metrics"] {
		return fmt.Errorf("expected ingress rules for the ports named webhook and metrics")
	}
	return nil
}
