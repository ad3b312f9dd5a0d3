//go:build helm

package helm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// templateErr renders the chart and returns helm's error output ("" when
// it renders).
func templateErr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(helmBin(t), append([]string{"template", "loopguard", chartDir, "-n", "team-ops"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out)
	}
	return ""
}

func podSpec(o obj) obj { return o["spec"].(obj)["template"].(obj)["spec"].(obj) }

func podMeta(o obj) obj { return o["spec"].(obj)["template"].(obj)["metadata"].(obj) }

// values.schema.json refuses a typo in an enum, a value of the wrong type
// and an unknown key, at template (and so at install).
func TestValuesSchemaRefuses(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"webhook.failurePolicy=Fial", "failurePolicy"},
		{"replicaCount=two", "replicaCount"},
		{"webhook.timeoutSeconds=60", "timeoutSeconds"},
		{"image.pullPolicy=Sometimes", "pullPolicy"},
		{"image.digest=latest", "digest"},
		{"replicaCuont=2", "replicaCuont"},
		{"agent.enabeld=true", "enabeld"},
		{"crds.instal=false", "instal"},
	} {
		out := templateErr(t, "--set", tc.args)
		if out == "" || !strings.Contains(out, tc.want) {
			t.Errorf("--set %s: rendered, or refused without naming %s:\n%s", tc.args, tc.want, out)
		}
	}
	if out := templateErr(t, "--set", "replicaCount=3,webhook.failurePolicy=Ignore,webhook.timeoutSeconds=10"); out != "" {
		t.Errorf("valid values refused:\n%s", out)
	}
}

// Every pod-level option, for the manager and for the agent.
func TestPodOptions(t *testing.T) {
	got := template(t, "team-ops", "--set-json", `imagePullSecrets=[{"name":"regcred"}]`,
		"--set", "priorityClassName=high,podAnnotations.a=b,podLabels.team=x,nodeSelector.disk=ssd,resources.limits.memory=1Gi",
		"--set-json", `tolerations=[{"key":"k","operator":"Exists"}]`,
		"--set-json", `affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"k","operator":"Exists"}]}]}}}`,
		"--set", "agent.enabled=true,agent.priorityClassName=node-critical,agent.podAnnotations.c=d,agent.podLabels.team=y,agent.nodeSelector.os=linux,agent.resources.limits.cpu=2500m",
		"--set-json", `agent.tolerations=[{"key":"only","operator":"Exists"}]`,
		"--set-json", `agent.affinity={"podAntiAffinity":{}}`)
	for _, tc := range []struct {
		key                                             string
		priority, annotation, label, nodeSelector, tolk string
		affinity                                        string
		resource                                        []string
	}{
		{"Deployment/loopguard-controller-manager", "high", "a=b", "team=x", "disk=ssd", "k", "nodeAffinity", []string{"limits", "memory", "1Gi"}},
		{"DaemonSet/loopguard-agent", "node-critical", "c=d", "team=y", "os=linux", "only", "podAntiAffinity", []string{"limits", "cpu", "2500m"}},
	} {
		o := got[tc.key]
		if o == nil {
			t.Fatalf("no %s", tc.key)
		}
		ps, pm := podSpec(o), podMeta(o)
		if ps["priorityClassName"] != tc.priority {
			t.Errorf("%s: priorityClassName %v", tc.key, ps["priorityClassName"])
		}
		if !reflect.DeepEqual(ps["imagePullSecrets"], []any{obj{"name": "regcred"}}) {
			t.Errorf("%s: imagePullSecrets %v", tc.key, ps["imagePullSecrets"])
		}
		kv := func(m any, s string) bool {
			k, v, _ := strings.Cut(s, "=")
			mm, _ := m.(obj)
			return mm[k] == v
		}
		if !kv(pm["annotations"], tc.annotation) || !kv(pm["labels"], tc.label) || !kv(ps["nodeSelector"], tc.nodeSelector) {
			t.Errorf("%s: annotations %v, labels %v, nodeSelector %v", tc.key, pm["annotations"], pm["labels"], ps["nodeSelector"])
		}
		if tol, _ := ps["tolerations"].([]any); len(tol) != 1 || tol[0].(obj)["key"] != tc.tolk {
			t.Errorf("%s: tolerations %v", tc.key, ps["tolerations"])
		}
		if aff, _ := ps["affinity"].(obj); aff == nil || aff[tc.affinity] == nil {
			t.Errorf("%s: affinity %v", tc.key, ps["affinity"])
		}
		res := containers(o)[0].(obj)["resources"].(obj)
		if v := str(res, tc.resource[0], tc.resource[1]); v != tc.resource[2] {
			t.Errorf("%s: resources %v", tc.key, res)
		}
	}
	// Defaults: config/'s priority class and the agent's toleration of every taint.
	def := template(t, "team-ops", "--set", "agent.enabled=true")
	if p := podSpec(def["Deployment/loopguard-controller-manager"])["priorityClassName"]; p != "system-cluster-critical" {
		t.Errorf("default priorityClassName %v", p)
	}
	if tol := podSpec(def["DaemonSet/loopguard-agent"])["tolerations"]; !reflect.DeepEqual(tol, []any{obj{"operator": "Exists"}}) {
		t.Errorf("default agent tolerations %v", tol)
	}
}

func TestImageDigestAndTimeout(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	got := template(t, "team-ops", "--set", "image.repository=r.example/lg,image.digest="+d+",webhook.timeoutSeconds=12",
		"--set", "agent.enabled=true,agent.image.repository=r.example/agent,agent.image.digest="+d)
	if img := containers(got["Deployment/loopguard-controller-manager"])[0].(obj)["image"]; img != "r.example/lg@"+d {
		t.Errorf("manager image %v", img)
	}
	if img := containers(got["DaemonSet/loopguard-agent"])[0].(obj)["image"]; img != "r.example/agent@"+d {
		t.Errorf("agent image %v", img)
	}
	// The manager registers the webhooks itself (--webhook-timeout-seconds).
	if args := fmt.Sprint(containers(got["Deployment/loopguard-controller-manager"])[0].(obj)["args"]); !strings.Contains(args, "--webhook-timeout-seconds=12") {
		t.Errorf("manager args %s: want --webhook-timeout-seconds=12", args)
	}
}

// crds.install renders the three CRDs, kept on uninstall unless crds.keep=false.
func TestCRDSwitch(t *testing.T) {
	crds := func(m map[string]obj) map[string]obj {
		out := map[string]obj{}
		for k, o := range m {
			if strings.HasPrefix(k, "CustomResourceDefinition/") {
				out[k] = o
			}
		}
		return out
	}
	def := crds(template(t, "team-ops"))
	if len(def) != 3 {
		t.Fatalf("%d CRDs by default, want 3", len(def))
	}
	for k, o := range def {
		if str(o, "metadata", "annotations", "helm.sh/resource-policy") != "keep" {
			t.Errorf("%s is not kept on uninstall", k)
		}
	}
	if n := len(crds(template(t, "team-ops", "--set", "crds.install=false"))); n != 0 {
		t.Errorf("crds.install=false rendered %d CRDs", n)
	}
	for k, o := range crds(template(t, "team-ops", "--set", "crds.keep=false")) {
		if str(o, "metadata", "annotations", "helm.sh/resource-policy") != "" {
			t.Errorf("crds.keep=false: %s still kept", k)
		}
	}
}

// nameOverride and fullnameOverride rename every object of the manager
// and every reference to them.
func TestFullnameOverride(t *testing.T) {
	def := template(t, "team-ops", "--set", "certManager.enabled=true,metrics.serviceMonitor.enabled=true,webhook.clientAuth.caBundle=x")
	for _, tc := range []struct{ set, prefix string }{{"fullnameOverride=acme", "acme-"}, {"nameOverride=lg", "lg-"}} {
		out := run(t, nil, helmBin(t), "template", "loopguard", chartDir, "-n", "team-ops",
			"--set", tc.set+",certManager.enabled=true,metrics.serviceMonitor.enabled=true,webhook.clientAuth.caBundle=x")
		for k := range def {
			name := strings.SplitN(k, "/", 2)[1]
			if !strings.HasPrefix(name, "loopguard-") {
				continue
			}
			if strings.Contains(out, name) {
				t.Errorf("%s: %s still in the output", tc.set, name)
			}
			renamed := strings.Replace(k, "/loopguard-", "/"+tc.prefix, 1)
			if _, ok := byKey(decodeAll(t, out))[renamed]; !ok {
				t.Errorf("%s: no %s", tc.set, renamed)
			}
		}
		if !strings.Contains(out, "--webhook-service-name="+tc.prefix+"webhook-service") {
			t.Errorf("%s: the manager's flags name the old Service", tc.set)
		}
	}
}

// The ServiceMonitor verifies TLS: against cert-manager's certificate of
// the metrics endpoint, or the tlsConfig given; never silently skipped.
func TestServiceMonitorVerifiesTLS(t *testing.T) {
	got := template(t, "team-ops", "--set", "certManager.enabled=true,metrics.serviceMonitor.enabled=true")
	sm := got["ServiceMonitor/loopguard-metrics-service"]
	if sm == nil {
		t.Fatal("no ServiceMonitor")
	}
	tls := sm["spec"].(obj)["endpoints"].([]any)[0].(obj)["tlsConfig"].(obj)
	if tls["insecureSkipVerify"] != false || tls["serverName"] != "loopguard-metrics-service.team-ops.svc" || str(tls, "ca", "secret", "name") != "loopguard-metrics-server-cert" {
		t.Errorf("tlsConfig %v", tls)
	}
	cert := got["Certificate/loopguard-metrics-cert"]
	if cert == nil || str(cert, "spec", "secretName") != "loopguard-metrics-server-cert" {
		t.Errorf("metrics Certificate %v", cert)
	}
	c := containers(got["Deployment/loopguard-controller-manager"])[0].(obj)
	if !strings.Contains(strings.Join(strs(c["args"]), " "), "--metrics-cert-dir=/tmp/k8s-metrics-server/metrics-certs") {
		t.Errorf("manager args %v", c["args"])
	}
	if out := templateErr(t, "--set", "metrics.serviceMonitor.enabled=true"); !strings.Contains(out, "verifies the metrics endpoint's certificate") {
		t.Errorf("a ServiceMonitor without a way to verify TLS rendered:\n%s", out)
	}
	got = template(t, "team-ops", "--set", "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.tlsConfig.serverName=m.example,metrics.serviceMonitor.tlsConfig.ca.configMap.name=ca,metrics.serviceMonitor.tlsConfig.ca.configMap.key=ca.crt")
	tls = got["ServiceMonitor/loopguard-metrics-service"]["spec"].(obj)["endpoints"].([]any)[0].(obj)["tlsConfig"].(obj)
	if tls["serverName"] != "m.example" {
		t.Errorf("given tlsConfig not used: %v", tls)
	}
	if _, ok := got["Certificate/loopguard-metrics-cert"]; ok {
		t.Error("a metrics Certificate without cert-manager")
	}
}

func strs(v any) []string {
	var out []string
	for _, a := range v.([]any) {
		out = append(out, a.(string))
	}
	return out
}

// NOTES.txt says what to do next. (helm install --dry-run needs a
// cluster; NOTES.txt is rendered as an ordinary template of a copy.)
func TestNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "loopguard")
	run(t, nil, "cp", "-r", chartDir, dir)
	if err := os.Rename(filepath.Join(dir, "templates", "NOTES.txt"), filepath.Join(dir, "notes.in")); err != nil {
		t.Fatal(err)
	}
	tpl := `notes: {{ tpl (.Files.Get "notes.in") . | toJson }}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "notes.yaml"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, helmBin(t), "template", "loopguard", dir, "-n", "team-ops", "--set", "crds.install=false", "--show-only", "templates/notes.yaml")
	for _, want := range []string{"rollout status deployment/loopguard-controller-manager", "kubectl get lbs", "9443", "crds.install=false"} {
		if !strings.Contains(out, want) {
			t.Errorf("NOTES lack %q:\n%s", want, out)
		}
	}
}
