//go:build helm

package helm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestGrafanaDashboard checks the chart's dashboard ConfigMap: off by
// default; on, it carries the sidecar's label (configurable), lands in the
// namespace asked for, and holds exactly config/grafana's dashboard.
func TestGrafanaDashboard(t *testing.T) {
	if _, ok := template(t, "team-ops")["ConfigMap/loopguard-grafana-dashboard"]; ok {
		t.Error("a dashboard ConfigMap by default")
	}
	got := template(t, "team-ops", "--set", "grafana.dashboards.enabled=true")
	cm := got["ConfigMap/loopguard-grafana-dashboard"]
	if cm == nil {
		t.Fatal("no dashboard ConfigMap with grafana.dashboards.enabled=true")
	}
	if l := cm["metadata"].(obj)["labels"].(obj); l["grafana_dashboard"] != "1" {
		t.Errorf("labels %v, want grafana_dashboard: \"1\"", l)
	}
	if ns := str(cm, "metadata", "namespace"); ns != "team-ops" {
		t.Errorf("namespace %q, want the release's", ns)
	}
	want, err := os.ReadFile(filepath.Join(root, "config", "grafana", "loopguard-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var wantJSON, gotJSON any
	if err := json.Unmarshal(want, &wantJSON); err != nil {
		t.Fatal(err)
	}
	text := str(cm, "data", "loopguard-dashboard.json")
	if err := json.Unmarshal([]byte(text), &gotJSON); err != nil {
		t.Fatalf("the ConfigMap's dashboard is not JSON: %v", err)
	}
	if !reflect.DeepEqual(gotJSON, wantJSON) {
		t.Error("the chart's dashboard differs from config/grafana/loopguard-dashboard.json; run make chart")
	}
	if text != string(want) {
		t.Error("the chart's dashboard is not config/grafana's file byte for byte; run make chart")
	}

	got = template(t, "team-ops", "--set", "grafana.dashboards.enabled=true,grafana.dashboards.label=dashboards.example.com/load,grafana.dashboards.labelValue=yes,grafana.dashboards.namespace=monitoring,grafana.dashboards.annotations.grafana_folder=loopguard")
	cm = got["ConfigMap/loopguard-grafana-dashboard"]
	if l := cm["metadata"].(obj)["labels"].(obj); l["dashboards.example.com/load"] != "yes" || l["grafana_dashboard"] != nil {
		t.Errorf("labels %v, want the configured label only", l)
	}
	if ns := str(cm, "metadata", "namespace"); ns != "monitoring" {
		t.Errorf("namespace %q, want monitoring", ns)
	}
	if a := str(cm, "metadata", "annotations", "grafana_folder"); a != "loopguard" {
		t.Errorf("grafana_folder annotation %q", a)
	}
	if out := templateErr(t, "--set", "grafana.dashboards.enabled=true,grafana.dashboards.label=not a label"); out == "" {
		t.Error("the schema accepted a label key with spaces")
	}
}

// TestPrometheusRule checks the chart's PrometheusRule: off by default; on,
// its spec is config/prometheus's, with the extra labels asked for.
func TestPrometheusRule(t *testing.T) {
	if _, ok := template(t, "team-ops")["PrometheusRule/loopguard"]; ok {
		t.Error("a PrometheusRule by default")
	}
	got := template(t, "team-ops", "--set", "prometheusRule.enabled=true,prometheusRule.labels.release=kube-prometheus-stack")
	pr := got["PrometheusRule/loopguard"]
	if pr == nil {
		t.Fatal("no PrometheusRule with prometheusRule.enabled=true")
	}
	if ns := str(pr, "metadata", "namespace"); ns != "team-ops" {
		t.Errorf("namespace %q", ns)
	}
	if l := str(pr, "metadata", "labels", "release"); l != "kube-prometheus-stack" {
		t.Errorf("extra label release=%q", l)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "loopguard-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want obj
	if err := yaml.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	// Both through JSON, so that numbers and strings compare alike.
	norm := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !reflect.DeepEqual(norm(pr["spec"]), norm(want["spec"])) {
		t.Error("the chart's PrometheusRule spec differs from config/prometheus/loopguard-rules.yaml; run make chart")
	}
}
