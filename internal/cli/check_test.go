package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	sigsyaml "sigs.k8s.io/yaml"

	goldenfile "github.com/loopguard/loopguard/test/golden"
)

// run executes the command tree with args and returns stdout, stderr and
// the exit code.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	code = Execute(context.Background(), NewRootCommand("loopguard", streams), args, &errOut)
	return out.String(), errOut.String(), code
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got, "./internal/cli/")
}

// transcript renders a run for a golden file.
func transcript(args []string, stdin, stdout, stderr string, code int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ loopguard %s", strings.Join(args, " "))
	if stdin != "" {
		b.WriteString(" < (stdin)")
	}
	fmt.Fprintf(&b, "\n%s", stdout)
	if stderr != "" {
		fmt.Fprintf(&b, "--- stderr\n%s", stderr)
	}
	fmt.Fprintf(&b, "--- exit status %d\n", code)
	return b.String()
}

const (
	td       = "testdata/check/"
	policies = td + "policies"
)

type checkCase struct {
	name  string
	args  []string
	stdin string // a file whose content is piped to -f -
	code  int
}

var checkCases = []checkCase{
	{"containers", []string{"-f", td + "containers.yaml", "--policies", policies}, "", ExitViolations},
	{"hostport", []string{"-f", td + "hostport.yaml", "--policies", policies}, "", ExitViolations},
	{"hostnetwork", []string{"-f", td + "hostnetwork.yaml", "--policies", policies}, "", ExitViolations},
	{"workloads", []string{"-f", td + "workloads.yaml", "--policies", policies, "-n", "shop"}, "", ExitViolations},
	{"services", []string{"-f", td + "services.yaml", "--policies", policies}, "", ExitViolations},
	{"race", []string{"-f", td + "race.yaml", "--policies", policies}, "", ExitViolations},
	{"endpoints", []string{"-f", td + "endpoints.yaml", "--policies", policies}, "", ExitViolations},
	{"endpoints-cross-namespace", []string{"-f", td + "endpoints-cross-namespace.yaml", "--policies", policies}, "", ExitViolations},
	{"cluster", []string{"-f", td + "cluster.yaml", "--policies", policies, "--namespace-labels", "shop=loopguard.io/enforce=true,team=cart"}, "", ExitViolations},
	{"cluster-unlabelled", []string{"-f", td + "cluster.yaml", "--policies", policies + "/cluster.yaml"}, "", ExitViolations},
	{"actions", []string{"-f", td + "actions.yaml", "--policies", policies}, "", ExitOK},
	{"merged", []string{"-f", td + "merged.yaml", "--policies", policies}, "", ExitViolations},
	{"clean", []string{"-f", td + "clean.yaml", "--policies", policies}, "", ExitOK},
	{"kubectl-dump", []string{"-f", td + "kubectl-dump.yaml", "--policies", policies}, "", ExitViolations},
	// A repository: a Helm chart rendered (with --values, --set), a
	// kustomize overlay built (its base not judged twice), files that are
	// not Kubernetes objects skipped (--strict fails), --exclude.
	{"repo", []string{"-f", td + "repo", "-n", "shop", "--exclude", "broken"}, "", ExitViolations},
	{"repo-values", []string{"-f", td + "repo", "-n", "shop", "--exclude", "broken", "--values", td + "repo-values.yaml"}, "", ExitViolations},
	{"repo-set", []string{"-f", td + "repo", "-n", "shop", "--exclude", "broken", "--set", "admin.expose=true,admin.port=15000"}, "", ExitViolations},
	{"repo-strict", []string{"-f", td + "repo", "-n", "shop", "--exclude", "broken", "--exclude", ".github", "--strict"}, "", ExitError},
	{"repo-unexcluded", []string{"-f", td + "repo", "-n", "shop"}, "", ExitError},
	{"chart", []string{"-f", td + "repo/chart", "-n", "shop", "--set", "admin.expose=true", "--policies", td + "repo/plain/policy.yaml"}, "", ExitViolations},
	{"kustomization", []string{"-f", td + "repo/kustomize/overlays/prod", "--policies", td + "repo/plain/policy.yaml"}, "", ExitViolations},
	{"list-json", []string{"-f", td + "list.json", "--policies", policies}, "", ExitViolations},
	{"stdin", []string{"-f", "-", "--policies", policies}, td + "kustomize-output.yaml", ExitViolations},
	{"tree", []string{"-f", td + "tree"}, "", ExitViolations},
	{"no-policies", []string{"-f", td + "containers.yaml"}, "", ExitOK},
	{"old-version", []string{"-f", td + "old-version.yaml", "--policies", policies}, "", ExitOK},
	{"malformed", []string{"-f", td + "malformed.yaml", "--policies", policies}, "", ExitError},
	{"wrong-type", []string{"-f", td + "wrong-type.yaml", "--policies", policies}, "", ExitError},
	{"invalid-policy", []string{"-f", td + "invalid-policy.yaml"}, "", ExitError},
	{"empty-stdin", []string{"-f", "-", "--policies", policies}, td + "empty.yaml", ExitError},
	{"missing-file", []string{"-f", td + "does-not-exist.yaml"}, "", ExitError},
	{"bad-namespace-labels", []string{"-f", td + "clean.yaml", "--namespace-labels", "shop"}, "", ExitError},
	{"bad-output", []string{"-f", td + "clean.yaml", "-o", "xml"}, "", ExitError},
}

// formatted are the cases whose JSON and SARIF output is golden too; between
// them they cover every reason and every action.
var formatted = map[string]bool{
	"containers": true, "hostport": true, "hostnetwork": true, "services": true, "race": true, "endpoints": true,
	"actions": true, "clean": true, "stdin": true, "workloads": true, "cluster": true, "repo-values": true,
}

// TestCheck runs every case and compares the transcript (stdout, stderr,
// exit status) with its golden file.
func TestCheck(t *testing.T) {
	for _, tc := range checkCases {
		formats := []string{outputText}
		if formatted[tc.name] {
			formats = append(formats, outputJSON, outputSARIF)
		}
		for _, format := range formats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				args := append([]string{"check"}, tc.args...)
				if format != outputText {
					args = append(args, "-o", format)
				}
				stdin := ""
				if tc.stdin != "" {
					b, err := os.ReadFile(tc.stdin)
					if err != nil {
						t.Fatal(err)
					}
					stdin = string(b)
				}
				stdout, stderr, code := run(t, stdin, args...)
				if code != tc.code {
					t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
				}
				if format != outputText && code != ExitError {
					if !json.Valid([]byte(stdout)) {
						t.Errorf("-o %s printed invalid JSON:\n%s", format, stdout)
					}
				}
				golden(t, "check/golden/"+tc.name+"."+format+".golden", transcript(args, tc.stdin, stdout, stderr, code))
			})
		}
	}
}

// TestCheckSARIFSchema checks the fields SARIF 2.1.0 requires and code
// scanning reads, on a run that covers every reason and level.
func TestCheckSARIFSchema(t *testing.T) {
	stdout, _, code := run(t, "", "check", "-o", "sarif", "--policies", policies,
		"-f", td+"containers.yaml", "-f", td+"hostport.yaml", "-f", td+"hostnetwork.yaml",
		"-f", td+"services.yaml", "-f", td+"race.yaml", "-f", td+"actions.yaml")
	if code != ExitViolations {
		t.Fatalf("exit status %d, want 1", code)
	}
	var log struct {
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID               string `json:"id"`
						ShortDescription struct {
							Text string `json:"text"`
						} `json:"shortDescription"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex *int   `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&log); err != nil {
		t.Fatalf("invalid SARIF JSON: %v", err)
	}
	if log.Version != "2.1.0" {
		t.Errorf("version %q, want 2.1.0", log.Version)
	}
	if log.Schema == "" {
		t.Error("$schema missing")
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(log.Runs))
	}
	r := log.Runs[0]
	if r.Tool.Driver.Name != "loopguard" {
		t.Errorf("runs[0].tool.driver.name %q", r.Tool.Driver.Name)
	}
	ruleIDs := map[string]int{}
	for i, rule := range r.Tool.Driver.Rules {
		if rule.ID == "" || rule.ShortDescription.Text == "" {
			t.Errorf("rules[%d] lacks id or shortDescription.text", i)
		}
		ruleIDs[rule.ID] = i
	}
	reasons, levels := map[string]bool{}, map[string]bool{}
	for i, res := range r.Results {
		if res.Message.Text == "" {
			t.Errorf("results[%d].message.text is empty", i)
		}
		idx, ok := ruleIDs[res.RuleID]
		if !ok {
			t.Errorf("results[%d].ruleId %q names no rule", i, res.RuleID)
		} else if res.RuleIndex == nil || *res.RuleIndex != idx {
			t.Errorf("results[%d].ruleIndex does not point at rule %q", i, res.RuleID)
		}
		switch res.Level {
		case "error", "warning", "note":
		default:
			t.Errorf("results[%d].level %q", i, res.Level)
		}
		if len(res.Locations) == 0 {
			t.Errorf("results[%d] has no location", i)
			continue
		}
		loc := res.Locations[0].PhysicalLocation
		if loc.ArtifactLocation.URI == "" || strings.HasPrefix(loc.ArtifactLocation.URI, "/") {
			t.Errorf("results[%d] artifactLocation.uri %q: want a relative URI", i, loc.ArtifactLocation.URI)
		}
		if loc.Region.StartLine < 1 {
			t.Errorf("results[%d] region.startLine %d", i, loc.Region.StartLine)
		}
		reasons[res.RuleID], levels[res.Level] = true, true
	}
	for _, want := range []string{"ContainerPort", "HostPort", "HostNetwork", "ServiceTarget", "SelectedByService"} {
		if !reasons[want] {
			t.Errorf("no result for rule %s", want)
		}
	}
	for _, want := range []string{"error", "warning", "note"} {
		if !levels[want] {
			t.Errorf("no result of level %s", want)
		}
	}
}

// TestCheckLines checks that findings point at the offending field's line,
// not only at the document's.
func TestCheckLines(t *testing.T) {
	stdout, _, _ := run(t, "", "check", "-o", "json", "--policies", policies,
		"-f", td+"containers.yaml", "-f", td+"workloads.yaml", "-f", td+"services.yaml", "-n", "shop")
	var rep checkReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	lines := map[string][]string{}
	for _, f := range rep.Findings {
		data, err := os.ReadFile(f.File)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Split(string(data), "\n")
		if f.Line < 1 || f.Line > len(all) {
			t.Errorf("%s: line %d out of range", f.File, f.Line)
			continue
		}
		lines[f.Object.Name+" "+f.Field] = append(lines[f.Object.Name+" "+f.Field], strings.TrimSpace(all[f.Line-1]))
	}
	want := map[string]string{
		"cart-0 spec.initContainers[0].ports[0].containerPort": "- containerPort: 15000",
		"cart-0 spec.initContainers[1].ports[0].containerPort": "containerPort: 15000",
		"cart-0 spec.containers[0].ports[1].containerPort":     "- containerPort: 15000",
		// flow style: the whole item is on the line of its list entry
		"cron spec.jobTemplate.spec.template.spec.containers[0].ports[0].containerPort": "- {name: envoy, image: envoy, ports: [{containerPort: 15000}]}",
		"numeric spec.ports[0].targetPort":                                              "- {name: admin, port: 80, targetPort: 15000}",
		"defaulted spec.ports[0].port":                                                  "- port: 15000",
		"container-name spec.ports[0].targetPort":                                       "- {port: 9000, targetPort: admin-port}",
	}
	for key, line := range want {
		got := lines[key]
		if len(got) != 1 || got[0] != line {
			t.Errorf("%s: got lines %q, want %q", key, got, line)
		}
	}
}

// TestCheckMalformedLine checks that malformed YAML is reported with the
// line of the error.
func TestCheckMalformedLine(t *testing.T) {
	_, stderr, code := run(t, "", "check", "-f", td+"malformed.yaml")
	if code != ExitError {
		t.Fatalf("exit status %d, want 2", code)
	}
	if !strings.Contains(stderr, td+"malformed.yaml:11: invalid YAML") {
		t.Errorf("stderr does not name line 11 (the unclosed {):\n%s", stderr)
	}
}

func TestSplitFieldPath(t *testing.T) {
	got := splitFieldPath("spec.template.spec.containers[1].ports[0].containerPort")
	want := []pathSegment{{key: "spec"}, {key: "template"}, {key: "spec"}, {key: "containers"}, {index: 1}, {key: "ports"}, {index: 0}, {key: "containerPort"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := splitFieldPath("metadata.labels[app.kubernetes.io/name]"); fmt.Sprint(got) != fmt.Sprint([]pathSegment{{key: "metadata"}, {key: "labels"}, {key: "app.kubernetes.io/name"}}) {
		t.Errorf("map key: got %v", got)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"check", "--help"}, {"audit", "--help"}} {
		stdout, _, code := run(t, "", args...)
		if code != ExitOK || !strings.Contains(stdout, "Examples:") {
			t.Errorf("%v: exit %d, no examples:\n%s", args, code, stdout)
		}
	}
	stdout, _, code := run(t, "", "version")
	if code != ExitOK || !strings.HasPrefix(stdout, "loopguard dev (commit ") {
		t.Errorf("version: exit %d: %q", code, stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		stdout, _, code := run(t, "", "completion", shell)
		if code != ExitOK || !strings.Contains(stdout, "loopguard") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
	// The kubectl plugin shows itself as "kubectl loopguard".
	var out bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}
	Execute(context.Background(), NewRootCommand("kubectl-loopguard", streams), []string{"check", "--help"}, &out)
	if !strings.Contains(out.String(), "kubectl loopguard check -f") {
		t.Errorf("plugin help does not say kubectl loopguard:\n%s", out.String())
	}
	// Flag errors exit 2 with usage advice.
	_, stderr, code := run(t, "", "check", "--no-such-flag")
	if code != ExitError || !strings.Contains(stderr, "unknown flag") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, stderr)
	}
}

// TestKrewManifest checks the plugin manifest names the binary and the
// platforms, and that its placeholders are marked.
func TestKrewManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "dist", "krew", "loopguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			ShortDescription string `json:"shortDescription"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
				Bin    string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := sigsyaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("invalid manifest: %v", err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "loopguard" {
		t.Errorf("not a krew Plugin named loopguard: %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name)
	}
	platforms := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		platforms[p.Selector.MatchLabels["os"]+"/"+p.Selector.MatchLabels["arch"]] = true
		if p.Bin != "kubectl-loopguard" || len(p.SHA256) != 64 || !strings.HasPrefix(p.URI, "https://") {
			t.Errorf("platform %v: bin %q, sha256 %q, uri %q", p.Selector.MatchLabels, p.Bin, p.SHA256, p.URI)
		}
	}
	for _, want := range []string{"linux/amd64", "darwin/amd64", "darwin/arm64"} {
		if !platforms[want] {
			t.Errorf("no platform %s", want)
		}
	}
	if strings.Count(string(data), "PLACEHOLDER") < len(m.Spec.Platforms) {
		t.Error("every placeholder uri and sha256 must be marked PLACEHOLDER")
	}
}

// TestCheckParseErrors: every YAML error has a line, the first line
// included, and a file that is an unrendered Helm template says so and how
// to render it.
func TestCheckParseErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{td + "first-line.yaml", []string{td + "first-line.yaml:1: invalid YAML: mapping values are not allowed in this context"}},
		{td + "malformed.yaml", []string{td + "malformed.yaml:"}},
		{td + "helm-template.yaml", []string{td + "helm-template.yaml:1: invalid YAML: ", "an unrendered Helm template", "helm template", "Chart.yaml"}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			_, stderr, code := run(t, "", "check", "-f", tc.file)
			if code != ExitError {
				t.Errorf("exit status %d, want %d", code, ExitError)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestCheckKubectlDump: in a `kubectl get -o yaml` dump, the control
// plane's Endpoints and EndpointSlices of a Service with a selector are
// not judged (as the webhook and audit do not), hand-written ones are.
func TestCheckKubectlDump(t *testing.T) {
	stdout, stderr, code := run(t, "", "check", "-f", td+"kubectl-dump.yaml", "--policies", policies)
	if code != ExitViolations {
		t.Errorf("exit status %d, want %d\n%s", code, ExitViolations, stderr)
	}
	for _, not := range []string{"Endpoints shop/cart:", "EndpointSlice shop/cart-x7k2p:"} {
		if strings.Contains(stdout, not) {
			t.Errorf("the control plane's object is judged (%q):\n%s", not, stdout)
		}
	}
	for _, want := range []string{"Service shop/cart:", "Pod shop/cart-5d8f7:", "EndpointSlice shop/cart-direct-1:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no finding %q:\n%s", want, stdout)
		}
	}
}
