package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

// The suffixes of the names of rendered sources: the file the output
// comes from, then how it was rendered. Their lines are the output's.
const (
	helmRendered      = " (helm template)"
	kustomizeRendered = " (kustomize build)"
)

// renderedFrom splits a source name into the file in the repository and
// whether it was rendered (its lines are the output's, not the file's).
func renderedFrom(name string) (file string, rendered bool) {
	for _, suffix := range []string{helmRendered, kustomizeRendered} {
		if f, ok := strings.CutSuffix(name, suffix); ok {
			return f, true
		}
	}
	return name, false
}

// helmReleaseName is the release name `helm template` uses when given none.
const helmReleaseName = "release-name"

// kustomizationFiles are the names kustomize reads a kustomization from.
var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// isChart reports whether dir is a Helm chart (it has a Chart.yaml).
func isChart(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "Chart.yaml"))
	return err == nil
}

// kustomization returns the kustomization file of dir, "" when it has none.
func kustomization(dir string) string {
	for _, name := range kustomizationFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// renderKustomization builds dir as `kustomize build dir` does, with
// kustomize's Go API (no plugins, no helmCharts: they run programs). The
// output is one source, named after the kustomization file.
func renderKustomization(dir string) (source, error) {
	name := kustomization(dir)
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return source{}, &inputError{file: name, msg: "kustomize build failed: " + err.Error()}
	}
	out, err := resources.AsYaml()
	if err != nil {
		return source{}, &inputError{file: name, msg: "kustomize build failed: " + err.Error()}
	}
	return source{name: name + kustomizeRendered, data: out}, nil
}

// helmValues are the values given to every chart, as helm template
// --values and --set read them: the files merged in order, then each
// --set.
type helmValues struct {
	files []string
	set   []string
}

func (v helmValues) merge() (map[string]any, error) {
	base := map[string]any{}
	for _, f := range v.files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, &inputError{file: f, msg: describeFSError(err)}
		}
		m := map[string]any{}
		if err := sigsyaml.Unmarshal(data, &m); err != nil {
			return nil, &inputError{file: f, msg: "invalid values file: " + err.Error()}
		}
		base = mergeValues(base, m)
	}
	for _, s := range v.set {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, fmt.Errorf("--set %q: %w", s, err)
		}
	}
	return base, nil
}

// mergeValues merges b into a as helm merges values files: maps merge
// key by key, anything else in b replaces a's.
func mergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// renderChart renders the chart in dir as `helm template` does (release
// name release-name, the namespace given, install, default capabilities):
// one source per rendered manifest, named after its template
// (dir/templates/x.yaml), in template order. NOTES.txt, partials and empty
// output are left out; so are the chart's crds/, which hold no judged kind.
func renderChart(dir, namespace string, values helmValues) ([]source, error) {
	chrt, err := loader.LoadDir(dir)
	if err != nil {
		return nil, &inputError{file: filepath.Join(dir, "Chart.yaml"), msg: "cannot load the Helm chart: " + err.Error()}
	}
	vals, err := values.merge()
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependenciesWithMerge(chrt, vals); err != nil {
		return nil, &inputError{file: filepath.Join(dir, "Chart.yaml"), msg: "helm template failed: " + err.Error()}
	}
	opts := chartutil.ReleaseOptions{Name: helmReleaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	renderVals, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, &inputError{file: filepath.Join(dir, "Chart.yaml"), msg: "helm template failed: " + err.Error()}
	}
	files, err := engine.Render(chrt, renderVals)
	if err != nil {
		return nil, &inputError{file: filepath.Join(dir, "Chart.yaml"), msg: "helm template failed: " + err.Error()}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []source
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(base, "_") || strings.TrimSpace(files[name]) == "" {
			continue
		}
		// name is <chart>/templates/x.yaml, or
		// <chart>/charts/<sub>/templates/x.yaml for a subchart.
		_, rel, _ := strings.Cut(name, "/")
		out = append(out, source{name: filepath.Join(dir, rel) + helmRendered, data: []byte(files[name])})
	}
	return out, nil
}
