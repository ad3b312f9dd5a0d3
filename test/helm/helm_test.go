//go:build helm

// Package helm checks the Helm chart in dist/chart against the kustomize
// install it is generated from (hack/helm/generate.sh), with the Helm pinned
// in hack/helm/tools:
//
//	go test -tags helm ./test/helm/
//
// HELM names a helm binary to use; by default bin/helm, built by
// hack/helm/build-helm.sh when missing. The server-side dry run runs when
// the dev cluster (.dev/kubeconfig) answers, and is skipped otherwise.
package helm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var root = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

var chartDir = filepath.Join(root, "dist", "chart")

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(h); err != nil {
		run(t, nil, filepath.Join(root, "hack", "helm", "build-helm.sh"), h)
	}
	return h
}

func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

type obj = map[string]any

func decodeAll(t *testing.T, text string) []obj {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	var objs []obj
	for {
		var o obj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

func str(o obj, path ...string) string {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(obj)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func key(o obj) string { return str(o, "kind") + "/" + str(o, "metadata", "name") }

func byKey(objs []obj) map[string]obj {
	m := map[string]obj{}
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

func template(t *testing.T, ns string, args ...string) map[string]obj {
	t.Helper()
	out := run(t, nil, helmBin(t), append([]string{"template", "loopguard", chartDir, "-n", ns}, args...)...)
	return byKey(decodeAll(t, out))
}

func kustomize(t *testing.T, dir string) map[string]obj {
	t.Helper()
	return byKey(decodeAll(t, run(t, nil, "go", "tool", "kustomize", "build", dir)))
}

// helmOnly strips what the chart adds to config/: Helm's labels and the
// manager flags that restate the defaults.
func helmOnly(o obj) obj {
	if labels, ok := o["metadata"].(obj)["labels"].(obj); ok {
		for _, l := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"} {
			delete(labels, l)
		}
	}
	if ann, ok := o["metadata"].(obj)["annotations"].(obj); ok && str(o, "kind") == "CustomResourceDefinition" {
		delete(ann, "helm.sh/resource-policy") // crds.keep
	}
	if str(o, "kind") == "Deployment" {
		c := containers(o)[0].(obj)
		c["args"] = slices.DeleteFunc(c["args"].([]any), func(a any) bool {
			return a == "--zap-log-level=info" || a == "--audit-interval=1h"
		})
	}
	return o
}

func containers(o obj) []any {
	return o["spec"].(obj)["template"].(obj)["spec"].(obj)["containers"].([]any)
}

// With default values the chart renders config/default (minus the
// Namespace, which Helm handles itself; the CRDs with crds.keep's annotation), with
// certManager.enabled config/overlays/cert-manager, and with agent.enabled
// config/agent besides (its own namespace included).
func TestDefaultsMatchKustomize(t *testing.T) {
	for _, tc := range []struct {
		dirs []string
		args []string
	}{
		{[]string{"config/default"}, nil},
		{[]string{"config/overlays/cert-manager"}, []string{"--set", "certManager.enabled=true"}},
		{[]string{"config/default", "config/agent"}, []string{"--set", "agent.enabled=true"}},
		// The component's placeholder CIDR, given as the value.
		{[]string{"config/overlays/webhook-networkpolicy"}, []string{"--set", "webhook.networkPolicy.enabled=true,webhook.networkPolicy.apiServerCIDRs={192.0.2.0/24}"}},
	} {
		t.Run(strings.Join(tc.dirs, "+"), func(t *testing.T) {
			want := map[string]obj{}
			for _, d := range tc.dirs {
				for k, o := range kustomize(t, d) {
					want[k] = o
				}
			}
			got := template(t, "loopguard-system", tc.args...)
			for k, w := range want {
				if k == "Namespace/loopguard-system" {
					continue
				}
				if kind := strings.Split(k, "/")[0]; kind == "ValidatingAdmissionPolicy" || kind == "ValidatingAdmissionPolicyBinding" {
					// Cluster-scoped kinds kustomize does not know: it gives
					// them a namespace, the chart does not.
					delete(w["metadata"].(obj), "namespace")
				}
				g, ok := got[k]
				if !ok {
					t.Errorf("%s: not rendered by the chart", k)
					continue
				}
				helmOnly(g)
				helmOnly(w)
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s differs:\nchart:     %v\nkustomize: %v", k, g, w)
				}
				delete(got, k)
			}
			for k := range got {
				t.Errorf("%s: rendered by the chart, not in %s", k, strings.Join(tc.dirs, " or "))
			}
		})
	}
}

func TestLint(t *testing.T) {
	t.Log(run(t, nil, helmBin(t), "lint", "--strict", chartDir))
}

func TestOverrides(t *testing.T) {
	got := template(t, "team-ops",
		"--set", "replicaCount=3,image.tag=v1,image.repository=registry.example/loopguard,image.pullPolicy=Always",
		"--set", "webhook.failurePolicy=Ignore,excludeNamespaces={team-x,kube-system}",
		"--set", "logLevel=debug,auditInterval=10m,extraArgs={--webhook-drain-delay=10s}",
		"--set", "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.tlsConfig.insecureSkipVerify=true,podDisruptionBudget.enabled=false")

	d := got["Deployment/loopguard-controller-manager"]
	if d == nil {
		t.Fatal("no Deployment")
	}
	if r := d["spec"].(obj)["replicas"]; r != int64(3) && r != float64(3) {
		t.Errorf("replicas = %v, want 3", r)
	}
	c := containers(d)[0].(obj)
	if c["image"] != "registry.example/loopguard:v1" || c["imagePullPolicy"] != "Always" {
		t.Errorf("image = %v (%v)", c["image"], c["imagePullPolicy"])
	}
	args := c["args"].([]any)
	for _, a := range []string{"--zap-log-level=debug", "--audit-interval=10m", "--webhook-drain-delay=10s"} {
		if !slices.Contains(args, any(a)) {
			t.Errorf("args %v lack %s", args, a)
		}
	}
	if d["metadata"].(obj)["namespace"] != "team-ops" {
		t.Errorf("Deployment namespace = %v", d["metadata"].(obj)["namespace"])
	}

	// The configuration is installed empty (the manager registers its
	// webhooks, scoped to the policies): the values reach its flags.
	vwc := got["ValidatingWebhookConfiguration/loopguard-validating-webhook-configuration"]
	if vwc == nil {
		t.Fatal("no ValidatingWebhookConfiguration (uninstall must remove what the manager registered)")
	}
	if webhooks, _ := vwc["webhooks"].([]any); len(webhooks) != 0 {
		t.Errorf("the installed ValidatingWebhookConfiguration has %d webhooks, want none (a manager that never starts must block nothing)", len(webhooks))
	}
	for _, a := range []string{"--webhook-failure-policy=Ignore", "--webhook-excluded-namespaces=kube-system,kube-node-lease,kube-public,team-x"} {
		if !slices.Contains(args, any(a)) {
			t.Errorf("args %v lack %s", args, a)
		}
	}

	for k, o := range got {
		if ns := str(o, "metadata", "namespace"); ns != "" && ns != "team-ops" {
			t.Errorf("%s in namespace %q", k, ns)
		}
		if subjects, ok := o["subjects"].([]any); ok {
			for _, s := range subjects {
				if ns := str(s.(obj), "namespace"); ns != "team-ops" {
					t.Errorf("%s: subject in namespace %q", k, ns)
				}
			}
		}
	}
	if _, ok := got["ServiceMonitor/loopguard-metrics-service"]; !ok {
		t.Error("metrics.serviceMonitor.enabled rendered no ServiceMonitor")
	}
	if _, ok := got["PodDisruptionBudget/loopguard-controller-manager"]; ok {
		t.Error("podDisruptionBudget.enabled=false rendered a PodDisruptionBudget")
	}
	if _, ok := template(t, "team-ops")["ServiceMonitor/loopguard-metrics-service"]; ok {
		t.Error("a ServiceMonitor by default")
	}
}

// TestChartUpToDate regenerates the chart and compares it with dist/chart.
func TestChartUpToDate(t *testing.T) {
	tmp := t.TempDir()
	run(t, nil, filepath.Join(root, "hack", "helm", "generate.sh"), tmp)
	out, err := exec.Command("diff", "-r", chartDir, tmp).CombinedOutput()
	if err != nil {
		t.Fatalf("dist/chart is stale; run hack/helm/generate.sh:\n%s", out)
	}
}

// TestServerDryRun applies the rendered chart (CRDs included) to the dev
// cluster with --dry-run=server. `make test-e2e` runs it with the cluster
// up; without one it fails (run `make dev-up` first), it never skips.
func TestServerDryRun(t *testing.T) {
	kubeconfig := filepath.Join(root, ".dev", "kubeconfig")
	kubectl := filepath.Join(root, "bin", "k8s", "current", "kubectl")
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Fatal("no dev cluster (.dev/kubeconfig): run `make dev-up` first")
	}
	if err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/readyz").Run(); err != nil {
		t.Fatalf("dev cluster not ready: %v", err)
	}
	manifest := run(t, nil, helmBin(t), "template", "loopguard", chartDir, "-n", "loopguard-system", "--include-crds",
		"--set", "replicaCount=3,webhook.failurePolicy=Ignore,excludeNamespaces={team-x}")
	t.Log(run(t, []byte(manifest), kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-f", "-"))
}

// TestAgentOverrides renders the node agent into the namespace and with the
// image the values name, and lints the chart with it on.
func TestAgentOverrides(t *testing.T) {
	t.Log(run(t, nil, helmBin(t), "lint", "--strict", chartDir, "--set", "agent.enabled=true"))
	got := template(t, "team-ops", "--set", "agent.enabled=true,agent.namespace=lg-agent,agent.image.repository=registry.example/agent,agent.image.tag=v1,agent.image.pullPolicy=Always")
	ds, ok := got["DaemonSet/loopguard-agent"]
	if !ok {
		t.Fatal("no agent DaemonSet")
	}
	c := containers(ds)[0].(obj)
	if str(ds, "metadata", "namespace") != "lg-agent" || c["image"] != "registry.example/agent:v1" || c["imagePullPolicy"] != "Always" {
		t.Errorf("agent DaemonSet: namespace %q, image %v, pullPolicy %v", str(ds, "metadata", "namespace"), c["image"], c["imagePullPolicy"])
	}
	if _, ok := got["Namespace/lg-agent"]; !ok {
		t.Error("the agent's namespace is not rendered")
	}
	crb := got["ClusterRoleBinding/loopguard-agent-rolebinding"]
	if s := crb["subjects"].([]any)[0].(obj); s["namespace"] != "lg-agent" || s["name"] != "loopguard-agent" {
		t.Errorf("agent role binding subject: %v", s)
	}
	if ns, ok := got["ValidatingAdmissionPolicy/loopguard-nodebindreport-node-restriction"]["metadata"].(obj)["namespace"]; ok {
		t.Errorf("cluster-scoped policy with namespace %v", ns)
	}
	if _, ok := template(t, "team-ops")["DaemonSet/loopguard-agent"]; ok {
		t.Error("agent rendered with agent.enabled unset (default false)")
	}
	// Discovery: off by default, --discovery with agent.discovery.enabled.
	hasDiscovery := func(ds obj) bool {
		return slices.Contains(containers(ds)[0].(obj)["args"].([]any), any("--discovery"))
	}
	if hasDiscovery(ds) {
		t.Error("agent runs with --discovery while agent.discovery.enabled is unset (default false)")
	}
	on := template(t, "team-ops", "--set", "agent.enabled=true,agent.discovery.enabled=true")["DaemonSet/loopguard-agent"]
	if on == nil || !hasDiscovery(on) {
		t.Error("agent.discovery.enabled=true: no --discovery in the agent's args")
	}
}

// TestWebhookNetworkPolicy: webhook.networkPolicy renders the component's
// NetworkPolicy with the values' peers, and refuses to render one that
// admits no API server.
func TestWebhookNetworkPolicy(t *testing.T) {
	if _, ok := template(t, "team-ops")["NetworkPolicy/loopguard-webhook"]; ok {
		t.Error("a webhook NetworkPolicy by default")
	}
	got := template(t, "team-ops", "--set", "webhook.networkPolicy.enabled=true",
		"--set", "webhook.networkPolicy.apiServerCIDRs={10.0.0.10/32,10.0.0.11/32}",
		"--set-json", `webhook.networkPolicy.extraFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"konnectivity-agent"}}}]`,
		"--set-json", `webhook.networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]`)
	np := got["NetworkPolicy/loopguard-webhook"]
	if np == nil {
		t.Fatal("webhook.networkPolicy.enabled rendered no NetworkPolicy/loopguard-webhook")
	}
	if ns := str(np, "metadata", "namespace"); ns != "team-ops" {
		t.Errorf("NetworkPolicy in namespace %q", ns)
	}
	rules := np["spec"].(obj)["ingress"].([]any)
	if len(rules) != 2 {
		t.Fatalf("ingress rules %v, want the webhook's and the metrics'", rules)
	}
	webhookFrom := rules[0].(obj)["from"].([]any)
	if len(webhookFrom) != 3 || str(webhookFrom[0].(obj), "ipBlock", "cidr") != "10.0.0.10/32" ||
		str(webhookFrom[1].(obj), "ipBlock", "cidr") != "10.0.0.11/32" ||
		str(webhookFrom[2].(obj), "podSelector", "matchLabels", "k8s-app") != "konnectivity-agent" {
		t.Errorf("webhook rule's peers: %v", webhookFrom)
	}
	if p := rules[0].(obj)["ports"].([]any)[0].(obj)["port"]; p != "webhook" {
		t.Errorf("first rule's port %v, want webhook", p)
	}
	metricsFrom := rules[1].(obj)["from"].([]any)
	if len(metricsFrom) != 1 || str(metricsFrom[0].(obj), "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "monitoring" {
		t.Errorf("metrics rule's peers: %v", metricsFrom)
	}

	out, err := exec.Command(helmBin(t), "template", "loopguard", chartDir, "--set", "webhook.networkPolicy.enabled=true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "webhook.networkPolicy.enabled needs webhook.networkPolicy.apiServerCIDRs") {
		t.Errorf("enabled without CIDRs: %v\n%s", err, out)
	}
}

// TestWebhookClientAuth: webhook.clientAuth.caBundle puts the bundle in a
// ConfigMap, mounts it and passes --webhook-client-ca (and the pinned
// names), as config/components/webhook-client-auth does.
func TestWebhookClientAuth(t *testing.T) {
	if _, ok := template(t, "team-ops")["ConfigMap/loopguard-webhook-client-ca"]; ok {
		t.Error("a client CA ConfigMap by default")
	}
	const bundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	got := template(t, "team-ops", "--set-string", "webhook.clientAuth.caBundle="+bundle,
		"--set", "webhook.clientAuth.allowedNames={kube-apiserver-webhook-client,apiserver-2}")
	cm := got["ConfigMap/loopguard-webhook-client-ca"]
	if cm == nil || strings.TrimSpace(str(cm, "data", "ca.crt")) != strings.TrimSpace(bundle) {
		t.Fatalf("ConfigMap: %v", cm)
	}
	c := containers(got["Deployment/loopguard-controller-manager"])[0].(obj)
	args := c["args"].([]any)
	for _, a := range []string{"--webhook-client-ca=/etc/loopguard/webhook-client-ca/ca.crt", "--webhook-client-names=kube-apiserver-webhook-client,apiserver-2"} {
		if !slices.Contains(args, any(a)) {
			t.Errorf("args %v lack %s", args, a)
		}
	}
	kz := kustomizeWith(t, "config/components/webhook-client-auth")
	kc := containers(kz["Deployment/loopguard-controller-manager"])[0].(obj)
	if !reflect.DeepEqual(c["volumeMounts"], kc["volumeMounts"]) {
		t.Errorf("volumeMounts: chart %v, component %v", c["volumeMounts"], kc["volumeMounts"])
	}
	pod := func(o obj) obj { return o["spec"].(obj)["template"].(obj)["spec"].(obj) }
	if v, kv := pod(got["Deployment/loopguard-controller-manager"])["volumes"], pod(kz["Deployment/loopguard-controller-manager"])["volumes"]; !reflect.DeepEqual(v, kv) {
		t.Errorf("volumes: chart %v, component %v", v, kv)
	}
	out, err := exec.Command(helmBin(t), "template", "loopguard", chartDir, "--set", "webhook.clientAuth.allowedNames={x}").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "webhook.clientAuth.allowedNames needs webhook.clientAuth.caBundle") {
		t.Errorf("names without a bundle: %v\n%s", err, out)
	}
}

// kustomizeWith builds config/default with a component.
func kustomizeWith(t *testing.T, component string) map[string]obj {
	t.Helper()
	dir, err := os.MkdirTemp(root, ".kustomize-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	k := "resources: [../config/default]\ncomponents: [../" + component + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomize(t, dir)
}
