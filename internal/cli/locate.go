package cli

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// pathSegment is one step of a field path: a key, or an index when key is
// empty.
type pathSegment struct {
	key   string
	index int
}

// splitFieldPath parses a field path as rules and field.Path render it:
// "spec.template.spec.containers[1].ports[0].containerPort". Bracketed
// non-numeric segments (map keys, "metadata.labels[app]") are keys.
func splitFieldPath(path string) []pathSegment {
	var out []pathSegment
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return out
			}
			inner := path[1:end]
			if i, err := strconv.Atoi(inner); err == nil {
				out = append(out, pathSegment{index: i})
			} else {
				out = append(out, pathSegment{key: inner})
			}
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			out = append(out, pathSegment{key: path[:end]})
			path = path[end:]
		}
	}
	return out
}

// locate returns the line of the field at path in the object node: the line
// of its key (or list item), or of the deepest part of the path that
// exists, or the object's own line. Best effort: it never fails.
func locate(node *yaml.Node, path string) int {
	line := node.Line
	cur := node
	for _, seg := range splitFieldPath(path) {
		cur = resolveAlias(cur)
		switch {
		case seg.key != "" && cur.Kind == yaml.MappingNode:
			k, v := lookupPair(cur, seg.key)
			if k == nil {
				return line
			}
			line, cur = k.Line, v
		case seg.key == "" && cur.Kind == yaml.SequenceNode:
			if seg.index < 0 || seg.index >= len(cur.Content) {
				return line
			}
			cur = cur.Content[seg.index]
			line = cur.Line
		default:
			return line
		}
	}
	return line
}

// lookup returns the value of key in a mapping node, or nil.
func lookup(node *yaml.Node, key string) *yaml.Node {
	_, v := lookupPair(resolveAlias(node), key)
	return v
}

func lookupPair(node *yaml.Node, key string) (k, v *yaml.Node) {
	if node.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i], resolveAlias(node.Content[i+1])
		}
	}
	return nil, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
