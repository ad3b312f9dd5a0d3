package main

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// podDefaults are the pod-level settings config/ gives a workload, which
// become the defaults of its values.
type podDefaults struct {
	priorityClassName string
	tolerations       *yaml.Node
	resources         *yaml.Node
}

// withBlock renders `key:` and the value's YAML only when the value is set.
func withBlock(value, key string) func(prefix string) string {
	return func(prefix string) string {
		n := indentOf(prefix)
		ind := strings.Repeat(" ", n)
		return fmt.Sprintf("{{- with %s }}\n%s%s:\n%s{{- toYaml . | nindent %d }}\n{{- end }}", value, ind, key, ind, n+2)
	}
}

// podValues templates a workload's pod: pod annotations and labels (vals
// is ".Values" or ".Values.agent"), imagePullSecrets (always
// .Values.imagePullSecrets), priorityClassName, nodeSelector, tolerations,
// affinity and the container's resources. What config/ sets becomes the
// default.
func podValues(p *placeholders, tmpl, ctr *yaml.Node, vals string) (podDefaults, error) {
	var d podDefaults
	meta, podSpec := get(tmpl, "metadata"), get(tmpl, "spec")
	if meta == nil || podSpec == nil {
		return d, fmt.Errorf("no pod template")
	}
	if ann := get(meta, "annotations"); ann != nil {
		set(ann, p.Block(func(prefix string) string {
			return fmt.Sprintf("{{- with %s.podAnnotations }}\n%s{{- toYaml . | nindent %d }}\n{{- end }}", vals, strings.Repeat(" ", indentOf(prefix)), indentOf(prefix))
		}), scalar(""))
	} else {
		insertAfter(meta, "labels", p.Block(withBlock(vals+".podAnnotations", "annotations")), scalar(""))
	}
	labels := get(meta, "labels")
	if labels == nil {
		return d, fmt.Errorf("the pod template has no labels")
	}
	set(labels, p.Block(func(prefix string) string {
		return fmt.Sprintf("{{- with %s.podLabels }}\n%s{{- toYaml . | nindent %d }}\n{{- end }}", vals, strings.Repeat(" ", indentOf(prefix)), indentOf(prefix))
	}), scalar(""))

	if pc := get(podSpec, "priorityClassName"); pc != nil {
		d.priorityClassName = pc.Value
		del(podSpec, "priorityClassName")
	}
	if t := get(podSpec, "tolerations"); t != nil {
		d.tolerations = t
		del(podSpec, "tolerations")
	}
	for _, k := range []string{"nodeSelector", "affinity", "imagePullSecrets"} {
		if get(podSpec, k) != nil {
			return d, fmt.Errorf("config/ sets the pod's %s; teach hack/helm/gen about it", k)
		}
	}
	set(podSpec, p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return fmt.Sprintf("{{- with %s.priorityClassName }}\n%spriorityClassName: {{ . | quote }}\n{{- end }}", vals, ind)
	}), scalar(""))
	set(podSpec, p.Block(withBlock(".Values.imagePullSecrets", "imagePullSecrets")), scalar(""))
	for _, k := range []string{"nodeSelector", "tolerations", "affinity"} {
		set(podSpec, p.Block(withBlock(vals+"."+k, k)), scalar(""))
	}

	d.resources = get(ctr, "resources")
	if d.resources == nil {
		return d, fmt.Errorf("the container has no resources")
	}
	set(ctr, "resources", scalar(p.Block(func(prefix string) string {
		n := indentOf(prefix)
		return fmt.Sprintf("%sresources:\n%s{{- toYaml %s.resources | nindent %d }}", strings.Repeat(" ", n), strings.Repeat(" ", n), vals, n+2)
	})))
	return d, nil
}
