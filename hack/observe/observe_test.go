package observe

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "../../config/prometheus/loopguard-rules.yaml"
	dashboardFile = "../../config/grafana/loopguard-dashboard.json"
	namesFile     = "metric-names.txt"
)

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: a selector without a metric name: %s", where, vs)
		}
		out = append(out, name)
		return nil
	})
	return out
}

// ruleExprs parses the PrometheusRule's spec with the rule parser and
// returns each alert's expression.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Metadata   json.RawMessage `json:"metadata"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(data, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.APIVersion != "monitoring.coreos.com/v1" || obj.Kind != "PrometheusRule" {
		t.Fatalf("%s is %s %s, want monitoring.coreos.com/v1 PrometheusRule", rulesFile, obj.APIVersion, obj.Kind)
	}
	spec, err := yaml.JSONToYAML(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, e := range errs {
		t.Errorf("%s: %v", rulesFile, e)
	}
	if groups == nil {
		t.FailNow()
	}
	out := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule that is not an alert", g.Name)
				continue
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a severity label, a summary and a description", r.Alert)
			}
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// grafanaVars stands in for the variables Grafana expands in queries.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$namespace", ".*", "${namespace}", ".*")

// dashboardExprs returns every query of the dashboard's panels and
// variables, by panel title.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q target %s has no expr", p.Title, tg.RefID)
			}
			out[p.Title+"/"+tg.RefID] = grafanaVars.Replace(tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		q, ok := v.Query.(map[string]any)
		if !ok {
			continue
		}
		s, _ := q["query"].(string)
		// label_values(METRIC, LABEL) names METRIC.
		if m, ok := strings.CutPrefix(s, "label_values("); ok {
			out["variable "+v.Name] = strings.TrimSpace(strings.SplitN(m, ",", 2)[0])
		}
	}
	return out
}

// listedNames reads metric-names.txt: "name origin" lines.
func listedNames(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(namesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || !slices.Contains([]string{"manager", "agent", "external"}, fields[1]) {
			t.Fatalf("%s: %q: want NAME manager|agent|external", namesFile, line)
		}
		out[fields[0]] = fields[1]
	}
	return out
}

// TestRulesParse checks the PrometheusRule with Prometheus' rule parser
// (expressions, templates, durations) and that it has an alert for each
// thing issue 20 asks to page on.
func TestRulesParse(t *testing.T) {
	alerts := ruleExprs(t)
	for _, want := range []string{
		"LoopguardWebhookDown", "LoopguardWebhookFailingClosed", "LoopguardAdmissionErrors",
		"LoopguardDenyPolicyViolated", "LoopguardListeningBeyondLoopback", "LoopguardStaleNodeReports",
		"LoopguardWebhookCertificateExpiresSoon", "LoopguardUnexpectedClient",
	} {
		if _, ok := alerts[want]; !ok {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestQueriedMetricsListed checks metric-names.txt lists exactly the
// metrics the rules and the dashboard query, so the tests that check the
// list against a running manager check every query.
func TestQueriedMetricsListed(t *testing.T) {
	queried := map[string][]string{}
	for where, expr := range ruleExprs(t) {
		for _, n := range metricNames(t, "alert "+where, expr) {
			queried[n] = append(queried[n], "alert "+where)
		}
	}
	for where, expr := range dashboardExprs(t) {
		for _, n := range metricNames(t, "dashboard "+where, expr) {
			queried[n] = append(queried[n], "dashboard "+where)
		}
	}
	listed := listedNames(t)
	var missing, unused []string
	for n, where := range queried {
		if _, ok := listed[n]; !ok {
			missing = append(missing, n+" ("+strings.Join(where, ", ")+")")
		}
	}
	for n := range listed {
		if _, ok := queried[n]; !ok {
			unused = append(unused, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(unused)
	for _, m := range missing {
		t.Errorf("%s does not list %s", namesFile, m)
	}
	for _, u := range unused {
		t.Errorf("%s lists %s, which no query names", namesFile, u)
	}
	for n, origin := range listed {
		if origin == "manager" && !strings.HasPrefix(n, "loopguard_") && !strings.HasPrefix(n, "controller_runtime_") {
			t.Errorf("%s: %s is listed as the manager's", namesFile, n)
		}
	}
}
