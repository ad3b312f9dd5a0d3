package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// placeholders: unique plain scalars put into the YAML tree, replaced in the
// marshalled text by template expressions.
type placeholders struct {
	inline map[string]string
	block  map[string]func(prefix string) string
	n      int
}

func (p *placeholders) next() string { p.n++; return fmt.Sprintf("__HELM_%04d__", p.n) }

// Inline: the token is replaced by expr where it stands.
func (p *placeholders) Inline(expr string) string {
	t := p.next()
	p.inline[t] = expr
	return t
}

// Block: the whole line holding the token is replaced by fn(text before the token).
func (p *placeholders) Block(fn func(prefix string) string) string {
	t := p.next()
	p.block[t] = fn
	return t
}

var tokenRE = regexp.MustCompile(`__HELM_\d{4}__`)

func (p *placeholders) apply(text string) (string, error) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		loc := tokenRE.FindStringIndex(line)
		if loc != nil {
			if fn, ok := p.block[line[loc[0]:loc[1]]]; ok {
				b.WriteString(fn(line[:loc[0]]))
				b.WriteString("\n")
				continue
			}
		}
		b.WriteString(line)
	}
	s := b.String()
	for t, expr := range p.inline {
		s = strings.ReplaceAll(s, t, expr)
	}
	if m := tokenRE.FindString(s); m != "" {
		return "", fmt.Errorf("placeholder %s left in output", m)
	}
	return s, nil
}

type object struct {
	kind, name string
	raw        string     // the document as kustomize printed it
	node       *yaml.Node // its mapping node
}

func (o object) key() string { return o.kind + "/" + o.name }

func load(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var objs []object
	for _, raw := range regexp.MustCompile(`(?m)^---\n`).Split(string(data), -1) {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m := doc.Content[0]
		objs = append(objs, object{
			kind: get(m, "kind").Value,
			name: get(get(m, "metadata"), "name").Value,
			raw:  raw,
			node: m,
		})
	}
	return objs, nil
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

// set sets key in m to v, appending the key if absent.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}

func del(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// insertAfter puts key: v right after the key after in m.
func insertAfter(m *yaml.Node, after, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == after {
			rest := append([]*yaml.Node{scalar(key), v}, m.Content[i+2:]...)
			m.Content = append(m.Content[:i+2], rest...)
			return
		}
	}
	set(m, key, v)
}

func marshal(n *yaml.Node) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func decode(n *yaml.Node) (any, error) {
	var v any
	err := n.Decode(&v)
	return v, err
}

func indentOf(prefix string) int { return len(prefix) - len(strings.TrimLeft(prefix, " ")) }

func indentText(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

// replaceNamespace swaps every occurrence of the kustomize namespace in a
// scalar value (metadata.namespace, subjects, clientConfig, dnsNames...) for
// the release namespace.
func replaceNamespace(n *yaml.Node, tok string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			replaceNamespace(n.Content[i], tok)
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			replaceNamespace(c, tok)
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, kustomizeNamespace) {
			n.Value = strings.ReplaceAll(n.Value, kustomizeNamespace, tok)
			n.Style = 0
		}
	}
}

func fileName(o object) string {
	return strings.ToLower(o.kind) + "-" + strings.TrimPrefix(o.name, namePrefix) + ".yaml"
}
