package main

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The node agent (config/agent, with config/agent-policy) renders behind
// agent.enabled, in its own namespace (agent.namespace), never the release
// namespace: it needs Pod Security "privileged", which the manager's
// namespace must not grant.
const (
	agentIf        = "{{- if .Values.agent.enabled }}"
	agentNamespace = "loopguard-agent"
)

// clusterScopedUnknown are cluster-scoped kinds kustomize's namespace
// transformer does not know, so it gives them a namespace; the chart drops
// it.
var clusterScopedUnknown = map[string]bool{"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true}

func editAgent(p *placeholders, m *yaml.Node, v *valuesDefaults) error {
	kind := get(m, "kind").Value
	meta := get(m, "metadata")
	ns := scalar(p.Inline("{{ .Values.agent.namespace }}"))
	switch {
	case clusterScopedUnknown[kind]:
		del(meta, "namespace")
	case kind == "Namespace":
		if get(meta, "name").Value != agentNamespace {
			return fmt.Errorf("expected the namespace %s", agentNamespace)
		}
		set(meta, "name", ns)
	case get(meta, "namespace") != nil:
		if get(meta, "namespace").Value != agentNamespace {
			return fmt.Errorf("expected namespace %s", agentNamespace)
		}
		set(meta, "namespace", ns)
	}
	if subjects := get(m, "subjects"); subjects != nil {
		for _, s := range subjects.Content {
			if n := get(s, "namespace"); n != nil && n.Value == agentNamespace {
				set(s, "namespace", ns)
			}
		}
	}
	if kind != "DaemonSet" {
		return nil
	}
	tmpl := get(get(m, "spec"), "template")
	containers := get(get(tmpl, "spec"), "containers")
	if containers == nil || len(containers.Content) != 1 {
		return fmt.Errorf("expected one container")
	}
	ctr := containers.Content[0]
	image := get(ctr, "image").Value
	i := strings.LastIndex(image, ":")
	if i < 0 {
		return fmt.Errorf("image %q has no tag", image)
	}
	v.agentImage = image[:i]
	set(ctr, "image", scalar(p.Inline(`"{{ include "loopguard.image" (list .Values.agent.image .Chart.AppVersion) }}"`)))
	insertAfter(ctr, "image", p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return "{{- with .Values.agent.image.pullPolicy }}\n" + ind + "imagePullPolicy: {{ . }}\n{{- end }}"
	}), scalar(""))
	// Discovery (status.discovery, what `loopguard discover` reads) is
	// agent.discovery.enabled, off by default.
	args := get(ctr, "args")
	if args == nil {
		return fmt.Errorf("the agent container has no args")
	}
	args.Content = append(args.Content, scalar(p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return "{{- if .Values.agent.discovery.enabled }}\n" + ind + "- --discovery\n{{- end }}"
	})))
	d, err := podValues(p, tmpl, ctr, ".Values.agent")
	if err != nil {
		return err
	}
	v.agent = d
	return nil
}
