package kinds

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// markerArgs parses the key=value arguments of a kubebuilder marker line.
func markerArgs(line, prefix string) map[string]string {
	out := map[string]string{}
	rest := strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "//")), prefix)
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = strings.Trim(v, `"`)
	}
	return out
}

// markers returns the marker lines with this prefix in the non-test Go
// files of dir.
func markers(t *testing.T, dir, prefix string) []map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "//")), prefix) {
				out = append(out, markerArgs(line, prefix))
			}
		}
	}
	return out
}

// pairs expands a marker's groups and resources ("apps;batch",
// "deployments;jobs") into group/resource pairs; core is "".
func pairs(m map[string]string) []string {
	var out []string
	for _, g := range strings.Split(m["groups"], ";") {
		for _, r := range strings.Split(m["resources"], ";") {
			out = append(out, g+"/"+r)
		}
	}
	return out
}

// TestWebhookMarkersMatchTable: the exposure webhook is registered for
// exactly the judged kinds, in their version, for create and update.
func TestWebhookMarkersMatchTable(t *testing.T) {
	got := map[string]bool{}
	for _, m := range append(markers(t, ".", "+kubebuilder:webhook:"), markers(t, "../../webhooks", "+kubebuilder:webhook:")...) {
		if m["path"] != "/validate-exposure" {
			continue
		}
		if m["versions"] != "v1" || m["verbs"] != "create;update" {
			t.Errorf("exposure webhook %s: versions=%s verbs=%s, want v1 and create;update", m["name"], m["versions"], m["verbs"])
		}
		for _, p := range pairs(m) {
			got[p] = true
		}
	}
	var want []string
	for _, k := range All {
		want = append(want, k.GVK.Group+"/"+k.Resource)
		if k.GVK.Version != "v1" {
			t.Errorf("%s: the webhook markers register v1 only", k.GVK)
		}
	}
	// A marker pairs every group with every resource: judge the resources.
	var gotResources, wantResources []string
	for p := range got {
		gotResources = append(gotResources, p[strings.Index(p, "/")+1:])
	}
	for _, p := range want {
		wantResources = append(wantResources, p[strings.Index(p, "/")+1:])
		if !got[p] {
			t.Errorf("judged kind %s has no exposure webhook marker", p)
		}
	}
	gotResources, wantResources = uniq(gotResources), uniq(wantResources)
	if !slices.Equal(gotResources, wantResources) {
		t.Errorf("exposure webhook markers register %v, the kinds table judges %v", gotResources, wantResources)
	}
}

// TestRBACMarkersCoverWatchedKinds: the controllers may get, list and
// watch every kind they watch and the audit reads.
func TestRBACMarkersCoverWatchedKinds(t *testing.T) {
	granted := map[string]bool{}
	for _, m := range append(markers(t, ".", "+kubebuilder:rbac:"), markers(t, "../../controllers", "+kubebuilder:rbac:")...) {
		verbs := strings.Split(m["verbs"], ";")
		if !slices.Contains(verbs, "list") || !slices.Contains(verbs, "watch") || !slices.Contains(verbs, "get") {
			continue
		}
		for _, p := range pairs(m) {
			granted[p] = true
		}
	}
	for _, k := range Watched() {
		if p := k.GVK.Group + "/" + k.Resource; !granted[p] {
			t.Errorf("watched kind %s: no +kubebuilder:rbac marker in internal/kinds or controllers/ grants get;list;watch on %q", k.GVK.Kind, p)
		}
	}
}

// TestTable: every entry is consistent: unique, its constructor of its
// Go type, a workload with a template path, a getter and a setter that
// agree, and its owner relations naming judged kinds.
func TestTable(t *testing.T) {
	seen := map[schema.GroupVersionKind]bool{}
	for _, k := range All {
		if seen[k.GVK] {
			t.Errorf("%s twice", k.GVK)
		}
		seen[k.GVK] = true
		obj := k.New()
		if got, ok := Of(obj); !ok || got.GVK != k.GVK {
			t.Errorf("%s: Of(New()) = %v", k.GVK, got)
		}
		if l := reflect.TypeOf(k.NewList()).Elem().Name(); l != k.GVK.Kind+"List" {
			t.Errorf("%s: list type %s", k.GVK, l)
		}
		if want := strings.ToLower(k.GVK.Kind) + "s"; k.Resource != want && k.Resource != strings.ToLower(k.GVK.Kind) {
			t.Errorf("%s: resource %q, want %q", k.GVK, k.Resource, want)
		}
		for _, c := range k.Controls {
			if _, ok := ByName(c); !ok {
				t.Errorf("%s controls %s, not a judged kind", k.GVK.Kind, c)
			}
		}
		if k.Role != RoleWorkload {
			if k.Template != nil || len(k.TemplatePath) > 0 || len(k.Controls) > 0 {
				t.Errorf("%s: not a workload, has a template or children", k.GVK)
			}
			continue
		}
		if len(k.TemplatePath) < 2 || k.TemplatePath[0] != "spec" || k.Template == nil || k.SetTemplate == nil {
			t.Fatalf("%s: a workload needs a template path under spec, a getter and a setter", k.GVK)
		}
		tmpl := &corev1.PodTemplateSpec{}
		tmpl.Labels = map[string]string{"app": "x"}
		k.SetTemplate(obj, tmpl)
		if got := k.Template(obj); got == nil || got.Labels["app"] != "x" {
			t.Errorf("%s: the template set is not the one read back", k.GVK)
		}
	}
}

func uniq(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// TestMarkerParser guards the parser the marker tests use: a marker line
// with quoted groups is read.
func TestMarkerParser(t *testing.T) {
	m := markerArgs(`// +kubebuilder:rbac:groups="",resources=pods;services,verbs=get;list;watch`, "+kubebuilder:rbac:")
	if got := pairs(m); !slices.Equal(got, []string{"/pods", "/services"}) || m["verbs"] != "get;list;watch" {
		t.Fatalf("parsed %v", m)
	}
}
