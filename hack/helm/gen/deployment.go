package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// checkDeploymentDiff checks that the cert-manager overlay's Deployment is
// config/default's plus exactly what editDeployment reproduces for
// certManager.enabled: --cert-rotation=false, the Secret volume and a
// read-only mount.
func checkDeploymentDiff(d, cm object) error {
	a, err := decode(d.node)
	if err != nil {
		return err
	}
	b, err := decode(cm.node)
	if err != nil {
		return err
	}
	pod := func(o any) map[string]any {
		return o.(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	}
	pa, pb := pod(a), pod(b)
	ca := pa["containers"].([]any)[0].(map[string]any)
	ca["args"] = append(ca["args"].([]any), "--cert-rotation=false")
	ca["volumeMounts"].([]any)[0].(map[string]any)["readOnly"] = true
	pa["volumes"].([]any)[0] = pb["volumes"].([]any)[0]
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("%s: config/overlays/cert-manager changes more than --cert-rotation=false, the certificate volume and its readOnly mount; teach hack/helm/gen about it", d.key())
	}
	return nil
}

func editDeployment(p *placeholders, m *yaml.Node, cm object, v *valuesDefaults) error {
	spec := get(m, "spec")
	v.replicas = get(spec, "replicas").Value
	set(spec, "replicas", scalar(p.Inline("{{ .Values.replicaCount }}")))
	podSpec := get(get(spec, "template"), "spec")
	containers := get(podSpec, "containers")
	if containers == nil || len(containers.Content) != 1 {
		return fmt.Errorf("expected one container")
	}
	ctr := containers.Content[0]
	image := get(ctr, "image").Value
	i := strings.LastIndex(image, ":")
	if i < 0 {
		return fmt.Errorf("image %q has no tag", image)
	}
	v.image, v.tag = image[:i], image[i+1:]
	set(ctr, "image", scalar(p.Inline(`"{{ include "loopguard.image" (list .Values.image .Chart.AppVersion) }}"`)))
	if pp := get(ctr, "imagePullPolicy"); pp != nil {
		v.pullPolicy = pp.Value
		del(ctr, "imagePullPolicy")
	}
	insertAfter(ctr, "image", p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return "{{- with .Values.image.pullPolicy }}\n" + ind + "imagePullPolicy: {{ . }}\n{{- end }}"
	}), scalar(""))

	args := get(ctr, "args")
	// The registration's flags come from the values (appended below).
	args.Content = slices.DeleteFunc(args.Content, func(a *yaml.Node) bool {
		return strings.HasPrefix(a.Value, "--webhook-failure-policy=") || strings.HasPrefix(a.Value, "--webhook-excluded-namespaces=") ||
			strings.HasPrefix(a.Value, "--webhook-timeout-seconds=")
	})
	args.Content = append(args.Content, scalar(p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return ind + "- --zap-log-level={{ .Values.logLevel }}\n" +
			ind + "- --audit-interval={{ .Values.auditInterval }}\n" +
			ind + "- --webhook-failure-policy={{ .Values.webhook.failurePolicy }}\n" +
			ind + "- --webhook-timeout-seconds={{ .Values.webhook.timeoutSeconds }}\n" +
			ind + `- --webhook-excluded-namespaces={{ concat (list "kube-system" "kube-node-lease" "kube-public") .Values.excludeNamespaces | uniq | join "," }}` + "\n" +
			certManagerIf + "\n" +
			ind + "- --cert-rotation=false\n" +
			"{{- end }}\n" +
			clientAuthArgs(ind) +
			metricsCertArgs(ind) +
			"{{- range .Values.extraArgs }}\n" +
			ind + "- {{ . | quote }}\n" +
			"{{- end }}"
	})))

	mounts := get(ctr, "volumeMounts")
	mounts.Content = append(mounts.Content, scalar(p.Block(clientAuthMount)), scalar(p.Block(metricsCertMount)))
	set(mounts.Content[0], p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return certManagerIf + "\n" + ind + "readOnly: true\n{{- end }}"
	}), scalar(""))

	volumes := get(podSpec, "volumes")
	defVol, err := marshal(volumes.Content[0])
	if err != nil {
		return err
	}
	cmVolNode := get(get(get(get(cm.node, "spec"), "template"), "spec"), "volumes").Content[0]
	cmVol, err := marshal(cmVolNode)
	if err != nil {
		return err
	}
	volumes.Content = append(volumes.Content, scalar(p.Block(clientAuthVolume)), scalar(p.Block(metricsCertVolume)))
	volumes.Content[0] = scalar(p.Block(func(prefix string) string {
		n := indentOf(prefix)
		item := func(s string) string {
			s = indentText(s, n+2)
			return s[:n] + "-" + s[n+1:]
		}
		return certManagerIf + "\n" + item(cmVol) + "\n{{- else }}\n" + item(defVol) + "\n{{- end }}"
	}))

	d, err := podValues(p, get(spec, "template"), ctr, ".Values")
	if err != nil {
		return err
	}
	v.manager = d
	return nil
}
