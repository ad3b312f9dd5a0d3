package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

const (
	gatekeeperModule = "github.com/open-policy-agent/gatekeeper/v3"
	gatekeeperNS     = "gatekeeper-system"
	gatekeeperVWC    = "gatekeeper-validating-webhook-configuration"
)

// Ports on 127.0.0.1, chosen free at each start: fixed ones collide with
// the dev clusters of other DEV_PORT_OFFSETs (9443+offset).
var (
	gatekeeperPort, gatekeeperAuditPort, gatekeeperProm, gatekeeperAuditProm int
	gatekeeperHealth, gatekeeperAuditHealth                                  string
)

var constraintGVR = schema.GroupVersionResource{Group: "constraints.gatekeeper.sh", Version: "v1beta1", Resource: "k8sloopbackports"}

// gatekeeperEngine runs the gatekeeper binary built from
// bench/peers/tools/gatekeeper as two host processes, as its release
// manifest (deploy/gatekeeper.yaml) runs two Deployments: the webhook
// (gatekeeper-controller-manager: --operation=webhook
// --operation=mutation-webhook) and the audit (gatekeeper-audit:
// --operation=audit --operation=status --operation=mutation-status
// --operation=generate), with the CRDs and webhook configuration the
// manifest ships, the webhook pointed at 127.0.0.1.
type gatekeeperEngine struct {
	e       *env
	proc    *process // the webhook
	audit   *process
	modDir  string
	crds    []byte
	webhook []byte
}

func (g *gatekeeperEngine) Name() string { return "gatekeeper" }
func (g *gatekeeperEngine) PID() int     { return g.proc.pid() }

// Aux is the audit process, measured apart from the webhook.
func (g *gatekeeperEngine) Aux() map[string]int {
	return map[string]int{"audit": g.audit.pid()}
}

func (g *gatekeeperEngine) Start(ctx context.Context) error {
	e := g.e
	bin := filepath.Join(e.opts.peersBin, "gatekeeper")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no %s: run make peers first: %w", bin, err)
	}
	dir, err := e.moduleDir("gatekeeper", gatekeeperModule)
	if err != nil {
		return err
	}
	g.modDir = dir
	gatekeeperPort, gatekeeperAuditPort = freePort(), freePort()
	gatekeeperProm, gatekeeperAuditProm = freePort(), freePort()
	gatekeeperHealth, gatekeeperAuditHealth = fmt.Sprintf("127.0.0.1:%d", freePort()), fmt.Sprintf("127.0.0.1:%d", freePort())
	manifest, err := os.ReadFile(filepath.Join(dir, "deploy/gatekeeper.yaml"))
	if err != nil {
		return fmt.Errorf("failed to read Gatekeeper's release manifest: %w", err)
	}
	work := filepath.Join(e.opts.devDir, "peers/gatekeeper")
	ca, err := writeServingCerts(filepath.Join(work, "certs"), "gatekeeper-webhook-service.gatekeeper-system.svc")
	if err != nil {
		return err
	}
	docs, err := splitYAML(manifest)
	if err != nil {
		return err
	}
	var crds, hooks [][]byte
	for _, d := range docs {
		switch d["kind"] {
		case "CustomResourceDefinition":
			b, _ := yaml.Marshal(d)
			crds = append(crds, b)
		case "ValidatingWebhookConfiguration":
			if err := pointWebhooksAt(d, fmt.Sprintf("https://127.0.0.1:%d", gatekeeperPort), ca); err != nil {
				return err
			}
			excludeOtherBenchNamespaces(d, g.Name())
			// Gatekeeper's documented way to see kubectl exec and
			// port-forward: add CONNECT to its validating webhook
			// (website/docs/customize-admission.md).
			for _, h := range d["webhooks"].([]any) {
				hook := h.(map[string]any)
				if hook["name"] == "validation.gatekeeper.sh" {
					for _, r := range hook["rules"].([]any) {
						rule := r.(map[string]any)
						rule["operations"] = append(rule["operations"].([]any), "CONNECT")
					}
				}
			}
			b, _ := yaml.Marshal(d)
			hooks = append(hooks, b)
		}
	}
	g.crds, g.webhook = joinYAML(crds), joinYAML(hooks)
	e.note(g.Name(), "runs as its release manifest's two Deployments: a webhook process (--operation=webhook --operation=mutation-webhook) and an audit process (--operation=audit --operation=status --operation=mutation-status --operation=generate); the harness added CONNECT to the operations of webhook validation.gatekeeper.sh (Gatekeeper's documented way to see port-forward, exec and attach) and pointed it at 127.0.0.1")
	if err := e.ensureNamespace(ctx, gatekeeperNS); err != nil {
		return err
	}
	// Gatekeeper owns its status objects through its own Pod (POD_NAME); a
	// Pod object that never runs (no node) stands for the host process.
	for _, pod := range []string{"gatekeeper-controller-manager-compare", "gatekeeper-audit-compare"} {
		self := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {loopguard-compare/role: host-process-stand-in}}
spec:
  containers: [{name: manager, image: registry.invalid/gatekeeper:host-process}]
`, pod, gatekeeperNS)
		if err := e.apply(ctx, []byte(self)); err != nil {
			return err
		}
	}
	if err := e.apply(ctx, g.crds); err != nil {
		return fmt.Errorf("failed to install Gatekeeper's CRDs: %w", err)
	}
	envFor := func(pod string) []string {
		return []string{"KUBECONFIG=" + e.kubecfg, "POD_NAMESPACE=" + gatekeeperNS, "POD_NAME=" + pod, "NAMESPACE=" + gatekeeperNS, "CONTAINER_NAME=manager"}
	}
	g.proc, err = startProcess(filepath.Join(work, "gatekeeper-webhook.log"), envFor("gatekeeper-controller-manager-compare"),
		bin,
		"--operation=webhook", "--operation=mutation-webhook",
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", gatekeeperPort),
		"--cert-dir="+filepath.Join(work, "certs"), "--disable-cert-rotation",
		"--health-addr="+gatekeeperHealth, "--metrics-addr=0", fmt.Sprintf("--prometheus-port=%d", gatekeeperProm),
		"--disable-opa-builtin={http.send}", "--exempt-namespace="+gatekeeperNS,
		"--shutdown-delay=0")
	if err != nil {
		return err
	}
	g.audit, err = startProcess(filepath.Join(work, "gatekeeper-audit.log"), envFor("gatekeeper-audit-compare"),
		bin,
		"--operation=audit", "--operation=status", "--operation=mutation-status", "--operation=generate",
		"--disable-opa-builtin={http.send}", "--disable-cert-rotation",
		// Its own Prometheus port: two processes on one host cannot share
		// the default 8888 (two pods can).
		"--health-addr="+gatekeeperAuditHealth, "--metrics-addr=0", fmt.Sprintf("--prometheus-port=%d", gatekeeperAuditProm),
		// The audit serves no webhook; its port must only not clash.
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", gatekeeperAuditPort), "--cert-dir="+filepath.Join(work, "certs"),
		"--shutdown-delay=0")
	if err != nil {
		return err
	}
	// A Gatekeeper left over from an earlier run would answer /readyz for
	// a process that could not bind its ports.
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", gatekeeperPort), time.Second); err == nil {
		conn.Close()
		if !g.proc.exited() {
			time.Sleep(2 * time.Second)
		}
		if g.proc.exited() {
			return fmt.Errorf("127.0.0.1:%d is taken by another process (a Gatekeeper of an earlier run?):\n%s", gatekeeperPort, g.proc.tail())
		}
	}
	err = waitUntil(ctx, 3*time.Minute, "Gatekeeper /readyz", func() (bool, error) {
		if g.proc.exited() {
			return false, fmt.Errorf("gatekeeper's webhook process exited:\n%s", g.proc.tail())
		}
		if g.audit.exited() {
			return false, fmt.Errorf("gatekeeper's audit process exited:\n%s", g.audit.tail())
		}
		resp, err := http.Get("http://" + gatekeeperHealth + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("readyz %d", resp.StatusCode)
	})
	if err != nil {
		return err
	}
	return e.apply(ctx, g.webhook)
}

func (g *gatekeeperEngine) InstallCasePolicies(ctx context.Context) error {
	for _, f := range []string{"sync.yaml", "template.yaml"} {
		b, err := g.e.policyFile("gatekeeper", f)
		if err != nil {
			return err
		}
		if err := g.e.applyRetry(ctx, b, time.Minute); err != nil {
			return err
		}
	}
	// The constraint's CRD appears once Gatekeeper compiled the template.
	for _, f := range []string{"constraint.yaml", "endpointslices-constraint.yaml"} {
		b, err := g.e.policyFile("gatekeeper", f)
		if err != nil {
			return err
		}
		if err := g.e.applyRetry(ctx, b, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (g *gatekeeperEngine) RemoveCasePolicies(ctx context.Context) error {
	for _, n := range []string{"cart-loopback", "cart-loopback-endpointslices"} {
		err := g.e.dyn.Resource(constraintGVR).Delete(ctx, n, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (g *gatekeeperEngine) SetBenchPolicies(ctx context.Context, ns string, n int) error {
	b, err := g.e.policyFile("gatekeeper", "constraint.yaml")
	if err != nil {
		return err
	}
	var base map[string]any
	if err := yaml.Unmarshal(b, &base); err != nil {
		return err
	}
	return setNumbered(ctx, g.e, constraintGVR, "", "bench-", n, func(i int) *unstructured.Unstructured {
		o := deepCopyMap(base)
		o["metadata"] = map[string]any{"name": fmt.Sprintf("bench-%04d", i)}
		match := o["spec"].(map[string]any)["match"].(map[string]any)
		delete(match, "namespaceSelector")
		match["namespaces"] = []any{ns}
		params := o["spec"].(map[string]any)["parameters"].(map[string]any)
		params["ports"] = []any{map[string]any{"port": int64(benchPort(i))}}
		return &unstructured.Unstructured{Object: o}
	})
}

func (g *gatekeeperEngine) Kill(context.Context) error {
	g.proc.stop()
	return nil
}

func (g *gatekeeperEngine) Stop(ctx context.Context) {
	e := g.e
	if g.webhook != nil {
		e.deleteYAML(ctx, g.webhook)
	}
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--wait=false", "k8sloopbackports.constraints.gatekeeper.sh", "--all")
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--wait=false", "constrainttemplates.templates.gatekeeper.sh", "--all")
	// Gatekeeper removes the constraint CRD it made for the template; a
	// CRD still terminating at the next start would keep the template from
	// compiling.
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--timeout=90s", "crd", "k8sloopbackports.constraints.gatekeeper.sh")
	g.proc.stop()
	g.audit.stop()
	if g.crds != nil {
		e.deleteCRDs(ctx, g.crds)
	}
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--wait=false", "namespace", gatekeeperNS)
}

// setNumbered makes objects <prefix>0000..<prefix>(n-1) exist and no other
// <prefix>N, creating with 8 workers.
func setNumbered(ctx context.Context, e *env, gvr schema.GroupVersionResource, ns, prefix string, n int, mk func(int) *unstructured.Unstructured) error {
	ri := e.dyn.Resource(gvr)
	var client interface {
		Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
		Delete(context.Context, string, metav1.DeleteOptions, ...string) error
		List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error)
	} = ri
	if ns != "" {
		client = ri.Namespace(ns)
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, o := range list.Items {
		i, ok := numbered(o.GetName(), prefix)
		if !ok {
			continue
		}
		if i < n {
			have[o.GetName()] = true
			continue
		}
		if err := client.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				obj := mk(i)
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					_, err = client.Create(ctx, obj, metav1.CreateOptions{})
					if err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
					time.Sleep(time.Second)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("failed to create %s: %w", obj.GetName(), err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		if !have[fmt.Sprintf("%s%04d", prefix, i)] {
			work <- i
		}
	}
	close(work)
	wg.Wait()
	return firstErr
}

// numbered parses <prefix><digits>.
func numbered(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}

// excludeOtherBenchNamespaces adds to every webhook of a configuration the
// condition that keeps it out of the other engines' bench namespaces.
func excludeOtherBenchNamespaces(cfg map[string]any, engine string) {
	hooks, _ := cfg["webhooks"].([]any)
	for _, h := range hooks {
		hook := h.(map[string]any)
		sel, _ := hook["namespaceSelector"].(map[string]any)
		if sel == nil {
			sel = map[string]any{}
		}
		exprs, _ := sel["matchExpressions"].([]any)
		sel["matchExpressions"] = append(exprs, map[string]any{"key": notLabelPrefix + engine, "operator": "DoesNotExist"})
		hook["namespaceSelector"] = sel
	}
}

// freePort is a TCP port free on 127.0.0.1 a moment ago.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free port on 127.0.0.1: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pointWebhooksAt rewrites every webhook of a configuration to a URL on
// base (keeping the service path) with caBundle ca.
func pointWebhooksAt(cfg map[string]any, base string, ca []byte) error {
	hooks, ok := cfg["webhooks"].([]any)
	if !ok {
		return fmt.Errorf("webhook configuration without webhooks")
	}
	for _, h := range hooks {
		hook := h.(map[string]any)
		cc, _ := hook["clientConfig"].(map[string]any)
		svc, _ := cc["service"].(map[string]any)
		path, _ := svc["path"].(string)
		if path == "" {
			path = "/"
		}
		hook["clientConfig"] = map[string]any{"url": base + path, "caBundle": base64.StdEncoding.EncodeToString(ca)}
	}
	return nil
}

func splitYAML(b []byte) ([]map[string]any, error) {
	var out []map[string]any
	for _, doc := range strings.Split(string(b), "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("failed to parse a YAML document: %w", err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func joinYAML(docs [][]byte) []byte {
	var sb strings.Builder
	for _, d := range docs {
		sb.WriteString("---\n")
		sb.Write(d)
	}
	return []byte(sb.String())
}

func deepCopyMap(m map[string]any) map[string]any {
	return runtimeDeepCopy(m).(map[string]any)
}

func runtimeDeepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = runtimeDeepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = runtimeDeepCopy(x)
		}
		return out
	}
	return v
}
