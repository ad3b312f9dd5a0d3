package cli

import (
	"fmt"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/kinds"
)

var (
	gvkNamespace = corev1.SchemeGroupVersion.WithKind("Namespace")
	gvkLBS       = v1alpha1.GroupVersion.WithKind("LoopbackService")
	gvkCLBS      = v1alpha1.GroupVersion.WithKind("ClusterLoopbackService")
)

// knownKindNames are the kinds loopguard reads, by name only: an object of
// one of them in another version is worth a warning, not silence.
func knownKindVersion(kind string) (schema.GroupVersionKind, bool) {
	if k, ok := kinds.ByName(kind); ok {
		return k.GVK, true
	}
	for _, gvk := range []schema.GroupVersionKind{gvkNamespace, gvkLBS, gvkCLBS} {
		if gvk.Kind == kind {
			return gvk, true
		}
	}
	return schema.GroupVersionKind{}, false
}

func (d *document) gvk() schema.GroupVersionKind {
	gv, err := schema.ParseGroupVersion(d.apiVersion)
	if err != nil {
		return schema.GroupVersionKind{Kind: d.kind}
	}
	return gv.WithKind(d.kind)
}

// describe names the document in errors: "Deployment shop/cart".
func (d *document) describe(namespace string) string {
	name, _ := d.metadata()
	if name == "" {
		name = "<unnamed>"
	}
	if namespace == "" {
		return d.kind + " " + name
	}
	return d.kind + " " + namespace + "/" + name
}

// decodeInto decodes the document into a typed object; ok is false when it
// could not (a value of the wrong type). Unknown and duplicate fields are
// errors only when strict (policies: the API server rejects them with
// kubectl's default --validate=strict), and obj is still decoded; other
// objects are read leniently, as the rules only look at a few of their
// fields.
func (d *document) decodeInto(obj any, strict bool, what string) (errs inputErrors, ok bool) {
	data, err := d.toJSON()
	if err != nil {
		return inputErrors{{file: d.file, line: d.line, msg: fmt.Sprintf("%s: %v", what, err)}}, false
	}
	if !strict {
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, obj); err != nil {
			return inputErrors{d.typeError(what, err)}, false
		}
		return nil, true
	}
	strictErrs, err := sigsjson.UnmarshalStrict(data, obj)
	if err != nil {
		return inputErrors{d.typeError(what, err)}, false
	}
	var out inputErrors
	for _, se := range strictErrs {
		line := d.line
		msg := se.Error()
		if fe, ok := se.(sigsjson.FieldError); ok {
			line = locate(d.node, fe.FieldPath())
			msg = fmt.Sprintf("%s: %v", fe.FieldPath(), se)
			if strings.HasPrefix(se.Error(), "duplicate field") {
				msg = fmt.Sprintf("%s: duplicate field", fe.FieldPath())
			} else if strings.HasPrefix(se.Error(), "unknown field") {
				msg = fmt.Sprintf("%s: unknown field (the API server rejects it)", fe.FieldPath())
			}
		}
		out = append(out, &inputError{file: d.file, line: line, msg: what + ": " + msg})
	}
	return out, true
}

// jsonTypeError matches encoding/json's (and sigs.k8s.io/json's) type
// errors: the JSON value, the field path without indices and the Go type.
var jsonTypeError = regexp.MustCompile(`^json: cannot unmarshal (.+) into Go struct field [^.]*\.(\S+) of type (\S+)$`)

// typeError reports a value of the wrong type at the line of the field when
// it can find it.
func (d *document) typeError(what string, err error) *inputError {
	m := jsonTypeError.FindStringSubmatch(err.Error())
	if m == nil {
		return &inputError{file: d.file, line: d.line, msg: fmt.Sprintf("%s: %v", what, err)}
	}
	value, path, goType := m[1], m[2], m[3]
	line := locateByType(d.node, strings.Split(path, "."), value)
	if line == 0 {
		line = d.line
	}
	return &inputError{file: d.file, line: line, msg: fmt.Sprintf("%s: %s: expected %s, got %s", what, path, goType, value)}
}

// locateByType finds the field at path (JSON names, no list indices) whose
// YAML value has the JSON type named by value ("string", "number 1.5",
// "object", ...), trying every item of the lists on the way. 0 when
// nothing matches.
func locateByType(node *yaml.Node, path []string, value string) int {
	node = resolveAlias(node)
	if node == nil {
		return 0
	}
	if node.Kind == yaml.SequenceNode {
		for _, it := range node.Content {
			if l := locateByType(it, path, value); l != 0 {
				return l
			}
		}
		return 0
	}
	if len(path) == 0 {
		if jsonTypeOf(node) == strings.Fields(value)[0] {
			return node.Line
		}
		return 0
	}
	k, v := lookupPair(node, path[0])
	if k == nil {
		return 0
	}
	if len(path) == 1 && v.Kind != yaml.SequenceNode {
		if jsonTypeOf(v) == strings.Fields(value)[0] {
			return k.Line
		}
		return 0
	}
	return locateByType(v, path[1:], value)
}

func jsonTypeOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "array"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			return "number"
		case "!!bool":
			return "bool"
		case "!!null":
			return "null"
		}
		return "string"
	}
	return ""
}

// helmTemplateHint follows the first error of a file that looks like an
// unrendered Helm template.
const helmTemplateHint = " (this file looks like an unrendered Helm template, with {{ ... }} actions: " +
	"render the chart first, helm template CHART | loopguard check -f -, or give check the chart's directory, " +
	"the one with Chart.yaml, and it renders the chart itself)"

// helmAction matches a Go template action as Helm charts write them.
var helmAction = regexp.MustCompile(`\{\{-?\s*(?:\.|include |if |end|range |with |toYaml |template |define |-|\$)`)

// looksLikeHelmTemplate reports whether data holds Go template actions.
func looksLikeHelmTemplate(data []byte) bool {
	return helmAction.Match(data)
}
