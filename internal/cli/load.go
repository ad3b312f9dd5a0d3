package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// stdinName is how findings and errors name standard input.
const stdinName = "<stdin>"

// source is one input file (or standard input) and its bytes.
type source struct {
	name string
	data []byte
	// inDir: found by walking a directory, where a file that holds no
	// Kubernetes object is skipped (counted; --strict fails on it).
	inDir bool
}

// document is one Kubernetes object of the input: a YAML or JSON document,
// or an item of a List, with where it starts and its node tree (for the
// lines of its fields).
type document struct {
	file string
	line int
	node *yaml.Node // a mapping node
	// raw is the object as plain data (map[string]any), what the typed
	// decoders and the policy validation read.
	raw        map[string]any
	apiVersion string
	kind       string
}

// inputError is an error in the input at file:line; line 0 means the file
// as a whole.
type inputError struct {
	file string
	line int
	msg  string
	// notObject: valid YAML that is not a Kubernetes object.
	notObject bool
}

func (e *inputError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s: %s", e.file, e.msg)
}

// inputErrors are every error found in the input; check reports them all.
type inputErrors []*inputError

func (es inputErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// manifestExtensions are the files a directory contributes, as with
// kubectl apply -R.
var manifestExtensions = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// walkOptions are how check reads directories.
type walkOptions struct {
	// namespace is the release namespace of the charts rendered.
	namespace string
	values    helmValues
	// exclude are glob patterns (path.Match) of paths to leave out,
	// matched against each path relative to the directory given and
	// against its base name; a directory that matches is left out whole.
	exclude []string
}

// excluded reports whether rel (slash-separated, relative to the
// directory walked) matches a pattern of --exclude.
func (w walkOptions) excluded(rel string) bool {
	for _, p := range w.exclude {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

// readSources reads every path: "-" is standard input (once: *readStdin
// records that it was read), a file is read whatever its name, and a
// directory contributes (walkDir) its charts rendered, its kustomizations
// built and its other .yaml, .yml and .json files, in lexical order.
func readSources(paths []string, stdin io.Reader, readStdin *bool, w walkOptions) ([]source, error) {
	var out []source
	for _, p := range paths {
		if p == "-" {
			if *readStdin {
				return nil, errors.New("standard input (-) can be read only once")
			}
			*readStdin = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("failed to read standard input: %w", err)
			}
			out = append(out, source{name: stdinName, data: data})
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, &inputError{file: p, msg: describeFSError(err)}
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, &inputError{file: p, msg: describeFSError(err)}
			}
			out = append(out, source{name: p, data: data})
			continue
		}
		srcs, err := walkDir(p, w)
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	return out, nil
}

// walkDir reads a directory as a repository: a Helm chart (a directory
// with Chart.yaml) is rendered as helm template would, a kustomization
// (kustomization.yaml) is built as kustomize build would, unless another
// kustomization of the tree uses it as a base or component (it is then
// judged through that one), and the files inside either are not read
// again on their own. Any other .yaml, .yml or .json file is read, marked
// inDir: one that holds no Kubernetes object is skipped, not an error.
func walkDir(root string, w walkOptions) ([]source, error) {
	type entry struct {
		path string
		kind string // "file", "chart" or "kustomization"
	}
	var entries []entry
	used := map[string]bool{} // kustomization dirs another one refers to
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return &inputError{file: p, msg: describeFSError(err)}
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			if w.excluded(filepath.ToSlash(rel)) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			switch {
			case isChart(p):
				entries = append(entries, entry{p, "chart"})
				return filepath.SkipDir
			case kustomization(p) != "":
				entries = append(entries, entry{p, "kustomization"})
				for _, ref := range kustomizationRefs(p) {
					used[filepath.Clean(ref)] = true
				}
				return filepath.SkipDir
			}
			return nil
		}
		if manifestExtensions[strings.ToLower(filepath.Ext(p))] {
			entries = append(entries, entry{p, "file"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	var out []source
	for _, e := range entries {
		switch e.kind {
		case "chart":
			srcs, err := renderChart(e.path, w.namespace, w.values)
			if err != nil {
				return nil, err
			}
			out = append(out, srcs...)
		case "kustomization":
			if used[filepath.Clean(e.path)] {
				continue
			}
			src, err := renderKustomization(e.path)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
		default:
			data, err := os.ReadFile(e.path)
			if err != nil {
				return nil, &inputError{file: e.path, msg: describeFSError(err)}
			}
			out = append(out, source{name: e.path, data: data, inDir: true})
		}
	}
	return out, nil
}

// kustomizationRefs are the local directories a kustomization names in
// resources, bases and components (a URL or a file is not one).
func kustomizationRefs(dir string) []string {
	data, err := os.ReadFile(kustomization(dir))
	if err != nil {
		return nil
	}
	var k struct {
		Resources  []string `json:"resources"`
		Bases      []string `json:"bases"`
		Components []string `json:"components"`
	}
	if sigsyaml.Unmarshal(data, &k) != nil {
		return nil
	}
	var out []string
	for _, r := range append(append(k.Resources, k.Bases...), k.Components...) {
		p := filepath.Join(dir, r)
		if info, err := os.Stat(p); err == nil && info.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

func describeFSError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// yamlLine matches the line yaml.v3 puts in its errors.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlParserProblems are the errors of yaml.v3's parser (as opposed to its
// scanner). For them yaml.v3 reports the 0-based line of the construct
// being parsed (e.g. the unclosed "{"), so the 1-based line is one more.
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// yamlError turns a yaml.v3 error into an inputError with its line.
func yamlError(file string, err error, fallbackLine int) inputErrors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out inputErrors
	for _, m := range msgs {
		line := fallbackLine
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = sm[2]
			if te == nil && yamlParserProblems[m] {
				line++
			}
		} else if te == nil && line == 0 {
			// yaml.v3 leaves the line out when it is the first one (its
			// 0-based line 0), whatever the problem.
			line = 1
		}
		m = strings.TrimPrefix(m, "yaml: ")
		out = append(out, &inputError{file: file, line: line, msg: "invalid YAML: " + m})
	}
	return out
}

// parseDocuments splits a file into its objects: every YAML document (JSON
// is YAML), with List kinds expanded into their items. Empty documents are
// skipped. Malformed YAML is an error with its line.
func parseDocuments(src source) ([]*document, inputErrors) {
	dec := yaml.NewDecoder(bytes.NewReader(src.data))
	var docs []*document
	var errs inputErrors
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, append(errs, yamlError(src.name, err, 0)...)
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
			continue
		}
		root := resolveAlias(n.Content[0])
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue // an empty document, e.g. only comments
		}
		ds, es := objectsOf(src.name, root)
		docs = append(docs, ds...)
		errs = append(errs, es...)
	}
	return docs, errs
}

// objectsOf decodes one object node, expanding Lists.
func objectsOf(file string, node *yaml.Node) ([]*document, inputErrors) {
	if node.Kind != yaml.MappingNode {
		return nil, inputErrors{{file: file, line: node.Line, msg: "not a Kubernetes object: expected a mapping with apiVersion and kind", notObject: true}}
	}
	var v any
	if err := node.Decode(&v); err != nil {
		return nil, yamlError(file, err, node.Line)
	}
	raw, err := jsonCompatible(v)
	if err != nil {
		return nil, inputErrors{{file: file, line: node.Line, msg: err.Error()}}
	}
	obj, _ := raw.(map[string]any)
	d := &document{file: file, line: node.Line, node: node, raw: obj}
	d.apiVersion, _ = obj["apiVersion"].(string)
	d.kind, _ = obj["kind"].(string)
	if d.kind == "" || d.apiVersion == "" {
		return nil, inputErrors{{file: file, line: node.Line, msg: "not a Kubernetes object: apiVersion and kind are required", notObject: true}}
	}
	if items := lookup(node, "items"); items != nil && isListKind(d.kind) {
		if items.Kind != yaml.SequenceNode {
			if items.Kind == yaml.ScalarNode && items.Tag == "!!null" {
				return nil, nil
			}
			return nil, inputErrors{{file: file, line: items.Line, msg: d.kind + ": items must be a list"}}
		}
		var docs []*document
		var errs inputErrors
		for _, it := range items.Content {
			ds, es := objectsOf(file, resolveAlias(it))
			docs = append(docs, ds...)
			errs = append(errs, es...)
		}
		return docs, errs
	}
	return []*document{d}, nil
}

// isListKind reports whether a kind is a list of objects: List (what
// kubectl get -o yaml prints) or any <Kind>List.
func isListKind(kind string) bool {
	return kind == "List" || strings.HasSuffix(kind, "List")
}

// jsonCompatible converts what yaml.v3 decodes into what encoding/json can
// encode: maps with non-string keys get string keys.
func jsonCompatible(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = c
		}
		return m, nil
	case []any:
		for i, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	default:
		return v, nil
	}
}

// toJSON renders the document's raw data for the typed decoders.
func (d *document) toJSON() ([]byte, error) {
	return json.Marshal(d.raw)
}

// metadata returns the document's metadata.name and metadata.namespace.
func (d *document) metadata() (name, namespace string) {
	md, _ := d.raw["metadata"].(map[string]any)
	name, _ = md["name"].(string)
	namespace, _ = md["namespace"].(string)
	return name, namespace
}
