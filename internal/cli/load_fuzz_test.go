package cli

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseDocuments: the CLI's reading of YAML and JSON input. No input
// panics; every object it returns has an apiVersion, a kind, a line and JSON
// for the typed decoders; and a JSON object it accepts (JSON is YAML) is read
// as encoding/json reads it: the same data, one document (or a List's
// items).
func FuzzParseDocuments(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {app: cart}}\nspec:\n  containers: [{name: c, ports: [{containerPort: 15000}]}]\n",
		"---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: admin}]}\n",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}\n",
		`{"apiVersion":"loopguard.io/v1alpha1","kind":"LoopbackService","metadata":{"name":"g"},"spec":{"podSelector":{},"ports":[{"port":6060,"endPort":6069}]}}`,
		`{"apiVersion":"v1","kind":"PodList","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","annotations":{"n":"1e3"}}}]}`,
		"a: &x {apiVersion: v1, kind: Pod}\nb: *x\n",
		"apiVersion: v1\nkind: Pod\n? [a, b]\n: c\n1: one\n",
		"{",
		"- 1\n- 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, errs := parseDocuments(source{name: "fuzz.yaml", data: data})
		for _, d := range docs {
			if d.apiVersion == "" || d.kind == "" || d.line < 1 || d.raw == nil {
				t.Fatalf("a document without apiVersion, kind or line: %+v", d)
			}
			if _, err := d.toJSON(); err != nil {
				t.Fatalf("a document the typed decoders cannot read: %v", err)
			}
		}
		var want map[string]any
		if len(errs) > 0 || json.Unmarshal(data, &want) != nil {
			return
		}
		var items []any
		if it, ok := want["items"].([]any); ok && isListKind(kindOf(want)) {
			items = it
		} else {
			items = []any{want}
		}
		if len(docs) != len(items) {
			t.Fatalf("%d documents from JSON with %d objects: %s", len(docs), len(items), data)
		}
		for i, d := range docs {
			b, _ := d.toJSON()
			var got any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, items[i]) {
				t.Fatalf("read differently from encoding/json:\n got %v\nwant %v\ninput %s", got, items[i], data)
			}
		}
	})
}

func kindOf(m map[string]any) string {
	k, _ := m["kind"].(string)
	return k
}
