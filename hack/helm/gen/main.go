// Command gen turns the kustomize install (config/default, and
// config/overlays/cert-manager for certManager.enabled) into the Helm chart
// in dist/chart. Run through hack/helm/generate.sh; the output depends on its
// inputs only, so re-running it on unchanged config/ gives identical files.
//
// Every object comes from the kustomize output; the generator only swaps
// values for template expressions (namespace, image, replicas, resources,
// manager flags, failurePolicy, excluded namespaces), adds Helm's labels and
// wraps objects in conditions. The difference between the two overlays is
// checked against what the chart's certManager.enabled switch reproduces, so
// a change to either overlay that the chart does not know about fails the
// generator instead of going stale silently.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

const (
	kustomizeNamespace = "loopguard-system"
	namePrefix         = "loopguard-"
	certManagerIf      = "{{- if .Values.certManager.enabled }}"
	notCertManagerIf   = "{{- if not .Values.certManager.enabled }}"
)

func main() {
	defaultPath := flag.String("default", "", "kustomize build config/default output")
	cmPath := flag.String("cert-manager", "", "kustomize build config/overlays/cert-manager output")
	agentPath := flag.String("agent", "", "kustomize build config/agent output")
	netpolPath := flag.String("webhook-netpol", "", "kustomize build config/overlays/webhook-networkpolicy output")
	out := flag.String("out", "dist/chart", "chart directory (replaced)")
	flag.Parse()
	if err := run(*defaultPath, *cmPath, *agentPath, *netpolPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// placeholders: unique plain scalars put into the YAML tree, replaced in the
// marshalled text by template expressions.
type placeholders struct {
	inline map[string]string
	block  map[string]func(prefix string) string
	n      int
}

func (p *placeholders) next() string { p.n++; return fmt.Sprintf("__HELM_%04d__", p.n) }

// Inline: the token is replaced by expr where it stands.
func (p *placeholders) Inline(expr string) string {
	t := p.next()
	p.inline[t] = expr
	return t
}

// Block: the whole line holding the token is replaced by fn(text before the token).
func (p *placeholders) Block(fn func(prefix string) string) string {
	t := p.next()
	p.block[t] = fn
	return t
}

var tokenRE = regexp.MustCompile(`__HELM_\d{4}__`)

func (p *placeholders) apply(text string) (string, error) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		loc := tokenRE.FindStringIndex(line)
		if loc != nil {
			if fn, ok := p.block[line[loc[0]:loc[1]]]; ok {
				b.WriteString(fn(line[:loc[0]]))
				b.WriteString("\n")
				continue
			}
		}
		b.WriteString(line)
	}
	s := b.String()
	for t, expr := range p.inline {
		s = strings.ReplaceAll(s, t, expr)
	}
	if m := tokenRE.FindString(s); m != "" {
		return "", fmt.Errorf("placeholder %s left in output", m)
	}
	return s, nil
}

type object struct {
	kind, name string
	raw        string     // the document as kustomize printed it
	node       *yaml.Node // its mapping node
}

func (o object) key() string { return o.kind + "/" + o.name }

func load(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var objs []object
	for _, raw := range regexp.MustCompile(`(?m)^---\n`).Split(string(data), -1) {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m := doc.Content[0]
		objs = append(objs, object{
			kind: get(m, "kind").Value,
			name: get(get(m, "metadata"), "name").Value,
			raw:  raw,
			node: m,
		})
	}
	return objs, nil
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

// set sets key in m to v, appending the key if absent.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}

func del(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// insertAfter puts key: v right after the key after in m.
func insertAfter(m *yaml.Node, after, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == after {
			rest := append([]*yaml.Node{scalar(key), v}, m.Content[i+2:]...)
			m.Content = append(m.Content[:i+2], rest...)
			return
		}
	}
	set(m, key, v)
}

func marshal(n *yaml.Node) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func decode(n *yaml.Node) (any, error) {
	var v any
	err := n.Decode(&v)
	return v, err
}

func indentOf(prefix string) int { return len(prefix) - len(strings.TrimLeft(prefix, " ")) }

func indentText(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

// replaceNamespace swaps every occurrence of the kustomize namespace in a
// scalar value (metadata.namespace, subjects, clientConfig, dnsNames...) for
// the release namespace.
func replaceNamespace(n *yaml.Node, tok string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			replaceNamespace(n.Content[i], tok)
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			replaceNamespace(c, tok)
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, kustomizeNamespace) {
			n.Value = strings.ReplaceAll(n.Value, kustomizeNamespace, tok)
			n.Style = 0
		}
	}
}

func fileName(o object) string {
	return strings.ToLower(o.kind) + "-" + strings.TrimPrefix(o.name, namePrefix) + ".yaml"
}

type chart struct {
	files map[string]string // path relative to the chart -> content
}

func run(defaultPath, cmPath, agentPath, netpolPath, out string) error {
	if defaultPath == "" || cmPath == "" || agentPath == "" || netpolPath == "" {
		return fmt.Errorf("-default, -cert-manager, -agent and -webhook-netpol are required")
	}
	netpolObjs, err := load(netpolPath)
	if err != nil {
		return err
	}
	agentObjs, err := load(agentPath)
	if err != nil {
		return err
	}
	defObjs, err := load(defaultPath)
	if err != nil {
		return err
	}
	cmObjs, err := load(cmPath)
	if err != nil {
		return err
	}
	// Before render edits the objects in place.
	netpol, err := webhookNetworkPolicy(defObjs, netpolObjs)
	if err != nil {
		return err
	}
	cmByKey := map[string]object{}
	for _, o := range cmObjs {
		cmByKey[o.key()] = o
	}
	defKeys := map[string]bool{}
	for _, o := range defObjs {
		defKeys[o.key()] = true
	}

	c := chart{files: map[string]string{}}
	v := valuesDefaults{}
	// A template comment: renders nothing, so an object switched off by
	// its condition leaves no comment-only document behind.
	const hdr = "{{- /* Generated by hack/helm/generate.sh from config/ (kustomize). DO NOT EDIT. */ -}}\n"
	const crdHdr = "# Generated by hack/helm/generate.sh from config/ (kustomize). DO NOT EDIT.\n"

	render := func(o object, cond string, edit func(p *placeholders, m *yaml.Node) error) error {
		p := &placeholders{inline: map[string]string{}, block: map[string]func(string) string{}}
		m := o.node
		meta := get(m, "metadata")
		if labels := get(meta, "labels"); labels != nil {
			del(labels, "app.kubernetes.io/managed-by")
			set(labels, p.Block(func(prefix string) string {
				return fmt.Sprintf(`%s{{- include "loopguard.labels" . | nindent %d }}`, strings.Repeat(" ", indentOf(prefix)), indentOf(prefix))
			}), scalar(""))
		}
		if edit != nil {
			if err := edit(p, m); err != nil {
				return fmt.Errorf("%s: %w", o.key(), err)
			}
		}
		replaceNamespace(m, p.Inline("{{ .Release.Namespace }}"))
		text, err := marshal(m)
		if err != nil {
			return err
		}
		text, err = p.apply(text)
		if err != nil {
			return fmt.Errorf("%s: %w", o.key(), err)
		}
		if cond != "" {
			text = cond + "\n" + text + "{{- end }}\n"
		}
		c.files["templates/"+fileName(o)] = hdr + text
		return nil
	}

	for _, o := range defObjs {
		cm, inCM := cmByKey[o.key()]
		switch {
		case o.kind == "CustomResourceDefinition":
			c.files["crds/"+o.name+".yaml"] = crdHdr + "---\n" + o.raw
		case o.kind == "Namespace":
			if err := render(o, "{{- if .Values.namespace.create }}", nil); err != nil {
				return err
			}
		case !inCM:
			// config/certs: the rotator's Secret and RBAC.
			if err := render(o, notCertManagerIf, nil); err != nil {
				return err
			}
		case o.kind == "Deployment":
			if err := checkDeploymentDiff(o, cm); err != nil {
				return err
			}
			if err := render(o, "", func(p *placeholders, m *yaml.Node) error { return editDeployment(p, m, cm, &v) }); err != nil {
				return err
			}
		case o.kind == "ValidatingWebhookConfiguration":
			ann, err := checkWebhookDiff(o, cm)
			if err != nil {
				return err
			}
			if err := render(o, "", func(p *placeholders, m *yaml.Node) error { return editWebhooks(p, m, ann, &v) }); err != nil {
				return err
			}
		default:
			if err := sameObject(o, cm); err != nil {
				return err
			}
			cond := ""
			switch {
			case o.kind == "PodDisruptionBudget":
				cond = "{{- if .Values.podDisruptionBudget.enabled }}"
			case o.kind == "Service" && o.name == namePrefix+"metrics-service":
				cond = "{{- if .Values.metrics.service.enabled }}"
				v.metricsServiceLabels, _ = decode(get(get(o.node, "metadata"), "labels"))
				v.metricsServiceName = o.name
				v.metricsPort = get(get(get(o.node, "spec"), "ports").Content[0], "name").Value
			}
			if err := render(o, cond, nil); err != nil {
				return err
			}
		}
	}
	for _, o := range cmObjs {
		if defKeys[o.key()] {
			continue
		}
		// config/certmanager: the Issuer and the Certificate.
		if err := render(o, certManagerIf, nil); err != nil {
			return err
		}
	}
	if err := render(netpol, webhookNetpolIf, editWebhookNetpol); err != nil {
		return err
	}
	for _, o := range agentObjs {
		if err := render(o, agentIf, func(p *placeholders, m *yaml.Node) error { return editAgent(p, m, &v) }); err != nil {
			return err
		}
	}
	if v.agentImage == "" {
		return fmt.Errorf("the agent's DaemonSet was not found in the config/agent output")
	}
	if v.image == "" || v.metricsServiceName == "" || len(v.excludeDefaults) == 0 {
		return fmt.Errorf("the Deployment, the metrics Service or the webhooks' namespaceSelector were not found in the kustomize output")
	}
	if err := staticFiles(&c, &v); err != nil {
		return err
	}
	return write(out, c)
}

// sameObject fails when an object both overlays render differs between them:
// the chart renders it once, for both values of certManager.enabled.
func sameObject(d, cm object) error {
	a, err := decode(d.node)
	if err != nil {
		return err
	}
	b, err := decode(cm.node)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("%s differs between config/default and config/overlays/cert-manager; teach hack/helm/gen about it", d.key())
	}
	return nil
}

// checkDeploymentDiff checks that the cert-manager overlay's Deployment is
// config/default's plus exactly what editDeployment reproduces for
// certManager.enabled: --cert-rotation=false, the Secret volume and a
// read-only mount.
func checkDeploymentDiff(d, cm object) error {
	a, err := decode(d.node)
	if err != nil {
		return err
	}
	b, err := decode(cm.node)
	if err != nil {
		return err
	}
	pod := func(o any) map[string]any {
		return o.(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	}
	pa, pb := pod(a), pod(b)
	ca := pa["containers"].([]any)[0].(map[string]any)
	ca["args"] = append(ca["args"].([]any), "--cert-rotation=false")
	ca["volumeMounts"].([]any)[0].(map[string]any)["readOnly"] = true
	pa["volumes"].([]any)[0] = pb["volumes"].([]any)[0]
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("%s: config/overlays/cert-manager changes more than --cert-rotation=false, the certificate volume and its readOnly mount; teach hack/helm/gen about it", d.key())
	}
	return nil
}

// checkWebhookDiff checks that the cert-manager overlay only adds
// annotations to the webhook configuration, and returns them.
func checkWebhookDiff(d, cm object) (*yaml.Node, error) {
	ann := get(get(cm.node, "metadata"), "annotations")
	if ann == nil || get(get(d.node, "metadata"), "annotations") != nil {
		return nil, fmt.Errorf("%s: expected annotations in the cert-manager overlay only", d.key())
	}
	a, err := decode(d.node)
	if err != nil {
		return nil, err
	}
	b, err := decode(cm.node)
	if err != nil {
		return nil, err
	}
	delete(b.(map[string]any)["metadata"].(map[string]any), "annotations")
	if !reflect.DeepEqual(a, b) {
		return nil, fmt.Errorf("%s: config/overlays/cert-manager changes more than its annotations; teach hack/helm/gen about it", d.key())
	}
	return ann, nil
}

type valuesDefaults struct {
	replicas             string
	image, tag           string
	pullPolicy           string
	resources            *yaml.Node
	excludeDefaults      []string
	failurePolicy        string
	metricsServiceLabels any
	metricsServiceName   string
	metricsPort          string
	agentImage           string
}

func editDeployment(p *placeholders, m *yaml.Node, cm object, v *valuesDefaults) error {
	spec := get(m, "spec")
	v.replicas = get(spec, "replicas").Value
	set(spec, "replicas", scalar(p.Inline("{{ .Values.replicaCount }}")))
	podSpec := get(get(spec, "template"), "spec")
	containers := get(podSpec, "containers")
	if containers == nil || len(containers.Content) != 1 {
		return fmt.Errorf("expected one container")
	}
	ctr := containers.Content[0]
	image := get(ctr, "image").Value
	i := strings.LastIndex(image, ":")
	if i < 0 {
		return fmt.Errorf("image %q has no tag", image)
	}
	v.image, v.tag = image[:i], image[i+1:]
	set(ctr, "image", scalar(p.Inline(`"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"`)))
	if pp := get(ctr, "imagePullPolicy"); pp != nil {
		v.pullPolicy = pp.Value
		del(ctr, "imagePullPolicy")
	}
	insertAfter(ctr, "image", p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return "{{- with .Values.image.pullPolicy }}\n" + ind + "imagePullPolicy: {{ . }}\n{{- end }}"
	}), scalar(""))

	args := get(ctr, "args")
	// The registration's flags come from the values (appended below).
	args.Content = slices.DeleteFunc(args.Content, func(a *yaml.Node) bool {
		return strings.HasPrefix(a.Value, "--webhook-failure-policy=") || strings.HasPrefix(a.Value, "--webhook-excluded-namespaces=")
	})
	args.Content = append(args.Content, scalar(p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return ind + "- --zap-log-level={{ .Values.logLevel }}\n" +
			ind + "- --audit-interval={{ .Values.auditInterval }}\n" +
			ind + "- --webhook-failure-policy={{ .Values.webhook.failurePolicy }}\n" +
			ind + `- --webhook-excluded-namespaces={{ concat (list "kube-system" "kube-node-lease" "kube-public") .Values.excludeNamespaces | uniq | join "," }}` + "\n" +
			certManagerIf + "\n" +
			ind + "- --cert-rotation=false\n" +
			"{{- end }}\n" +
			clientAuthArgs(ind) +
			"{{- range .Values.extraArgs }}\n" +
			ind + "- {{ . | quote }}\n" +
			"{{- end }}"
	})))

	v.resources = get(ctr, "resources")
	set(ctr, "resources", scalar(p.Block(func(prefix string) string {
		return fmt.Sprintf("%sresources:\n%s{{- toYaml .Values.resources | nindent %d }}", strings.Repeat(" ", indentOf(prefix)), strings.Repeat(" ", indentOf(prefix)), indentOf(prefix)+2)
	})))

	mounts := get(ctr, "volumeMounts")
	mounts.Content = append(mounts.Content, scalar(p.Block(clientAuthMount)))
	set(mounts.Content[0], p.Block(func(prefix string) string {
		ind := strings.Repeat(" ", indentOf(prefix))
		return certManagerIf + "\n" + ind + "readOnly: true\n{{- end }}"
	}), scalar(""))

	volumes := get(podSpec, "volumes")
	defVol, err := marshal(volumes.Content[0])
	if err != nil {
		return err
	}
	cmVolNode := get(get(get(get(cm.node, "spec"), "template"), "spec"), "volumes").Content[0]
	cmVol, err := marshal(cmVolNode)
	if err != nil {
		return err
	}
	volumes.Content = append(volumes.Content, scalar(p.Block(clientAuthVolume)))
	volumes.Content[0] = scalar(p.Block(func(prefix string) string {
		n := indentOf(prefix)
		item := func(s string) string {
			s = indentText(s, n+2)
			return s[:n] + "-" + s[n+1:]
		}
		return certManagerIf + "\n" + item(cmVol) + "\n{{- else }}\n" + item(defVol) + "\n{{- end }}"
	}))

	set(podSpec, p.Block(func(prefix string) string {
		n := indentOf(prefix)
		ind := strings.Repeat(" ", n)
		var b strings.Builder
		for _, k := range []string{"nodeSelector", "tolerations", "affinity"} {
			fmt.Fprintf(&b, "{{- with .Values.%s }}\n%s%s:\n%s{{- toYaml . | nindent %d }}\n{{- end }}\n", k, ind, k, ind, n+2)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}), scalar(""))
	return nil
}

func editWebhooks(p *placeholders, m *yaml.Node, ann *yaml.Node, v *valuesDefaults) error {
	annText, err := marshal(ann)
	if err != nil {
		return err
	}
	annText = strings.ReplaceAll(annText, kustomizeNamespace, "{{ .Release.Namespace }}")
	set(get(m, "metadata"), p.Block(func(prefix string) string {
		n := indentOf(prefix)
		return certManagerIf + "\n" + strings.Repeat(" ", n) + "annotations:\n" + indentText(annText, n+2) + "\n{{- end }}"
	}), scalar(""))
	// The install's configuration has no webhooks: the manager registers
	// them (--webhook-failure-policy, --webhook-excluded-namespaces, set in
	// the Deployment's args by editDeployment).
	if hooks := get(m, "webhooks"); hooks != nil && len(hooks.Content) > 0 {
		return fmt.Errorf("the ValidatingWebhookConfiguration of config/webhook must have no webhooks (the manager registers them)")
	}
	v.failurePolicy = "Fail"
	v.excludeDefaults = []string{"kube-system", "kube-node-lease", "kube-public", kustomizeNamespace}
	return nil
}

func write(out string, c chart) error {
	for _, d := range []string{"templates", "crds"} {
		if err := os.RemoveAll(filepath.Join(out, d)); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(c.files))
	for n := range c.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		path := filepath.Join(out, n)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(c.files[n]), 0o644); err != nil {
			return err
		}
	}
	return nil
}
