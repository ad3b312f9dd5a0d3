package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

const (
	kyvernoModule = "github.com/kyverno/kyverno"
	kyvernoNS     = "kyverno"
	kyvernoSvc    = "kyverno-svc"
)

// Kyverno's ports on 127.0.0.1, chosen free at each start.
var kyvernoPort, kyvernoMetricsPort, kyvernoCRMetricsPort int

var validatingPolicyGVR = schema.GroupVersionResource{Group: "policies.kyverno.io", Version: "v1", Resource: "validatingpolicies"}

// kyvernoEngine runs Kyverno's admission controller (cmd/kyverno, built from
// bench/peers/tools/kyverno) as a host process. It manages its own
// certificates (secrets in the kyverno namespace) and registers its own
// webhooks; --serverIP makes them URL-based, on 127.0.0.1.
type kyvernoEngine struct {
	e    *env
	proc *process
	crds []byte
	// apicall is the earlier configuration, kept as an extra row: every
	// policy reads the Services through the API server (resource.List) at
	// each admission, through Kyverno's default client rate limit. Without
	// it, the Services come from a GlobalContextEntry and the client rate
	// limit is raised as production deployments of Kyverno do.
	apicall bool
}

func (k *kyvernoEngine) Name() string {
	if k.apicall {
		return "kyverno-apicall"
	}
	return "kyverno"
}

// policyFile is the ValidatingPolicy of this configuration.
func (k *kyvernoEngine) policyFile() string {
	if k.apicall {
		return "validatingpolicy-apicall.yaml"
	}
	return "validatingpolicy.yaml"
}

// rateLimitArgs: Kyverno's client rate limit (--clientRateLimitQPS/Burst)
// caps its calls to the API server; deployments that call the API server
// from policies raise it (1000/1000, for example, in
// redhat-appstudio/infra-deployments#6577). The apicall configuration keeps
// the binary's default.
func (k *kyvernoEngine) rateLimitArgs() []string {
	if k.apicall {
		return nil
	}
	return []string{"--clientRateLimitQPS=1000", "--clientRateLimitBurst=1000"}
}
func (k *kyvernoEngine) PID() int { return k.proc.pid() }

func (k *kyvernoEngine) Start(ctx context.Context) error {
	e := k.e
	bin := filepath.Join(e.opts.peersBin, "kyverno")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no %s: run make peers first: %w", bin, err)
	}
	dir, err := e.moduleDir("kyverno", kyvernoModule)
	if err != nil {
		return err
	}
	var crds [][]byte
	err = filepath.WalkDir(filepath.Join(dir, "config/crds"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		crds = append(crds, b)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to read Kyverno's CRDs: %w", err)
	}
	k.crds = joinYAML(crds)
	// The namespace and the two ConfigMaps its Helm chart creates; the
	// webhooks leave the kyverno and kube-system namespaces alone, as the
	// chart's defaults do, and the other engines' bench namespaces.
	if err := e.ensureNamespace(ctx, kyvernoNS); err != nil {
		return err
	}
	base := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno, namespace: %[1]s}
data:
  webhooks: '[{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","%[1]s"]},{"key":"%[2]s","operator":"DoesNotExist"}]}}]'
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno-metrics, namespace: %[1]s}
`, kyvernoNS, notLabelPrefix+k.Name())
	if err := e.apply(ctx, []byte(base)); err != nil {
		return err
	}
	if err := e.apply(ctx, k.crds); err != nil {
		return fmt.Errorf("failed to install Kyverno's CRDs: %w", err)
	}
	if !k.apicall {
		// Before Kyverno runs: its GlobalContextEntry webhook is not
		// served with a CA the API server trusts at once after start.
		b, err := e.policyFile("kyverno", "globalcontext.yaml")
		if err != nil {
			return err
		}
		if err := e.applyRetry(ctx, b, time.Minute); err != nil {
			return fmt.Errorf("failed to create the GlobalContextEntry: %w", err)
		}
	}
	work := filepath.Join(e.opts.devDir, "peers", k.Name())
	kyvernoPort, kyvernoMetricsPort, kyvernoCRMetricsPort = freePort(), freePort(), freePort()
	args := append([]string{
		"--kubeconfig=" + e.kubecfg,
		fmt.Sprintf("--serverIP=127.0.0.1:%d", kyvernoPort),
		"--webhookServerHost=127.0.0.1", fmt.Sprintf("--webhookServerPort=%d", kyvernoPort),
		"--caSecretName=" + kyvernoSvc + "." + kyvernoNS + ".svc.kyverno-tls-ca",
		"--tlsSecretName=" + kyvernoSvc + "." + kyvernoNS + ".svc.kyverno-tls-pair",
		"--metricsHost=127.0.0.1", fmt.Sprintf("--metricsPort=%d", kyvernoMetricsPort),
		fmt.Sprintf("--controllerRuntimeMetricsAddress=127.0.0.1:%d", kyvernoCRMetricsPort),
		"--tlsKeyAlgorithm=ECDSA",
	}, k.rateLimitArgs()...)
	if len(k.rateLimitArgs()) > 0 {
		e.note(k.Name(), "started with %s; the Services come from GlobalContextEntry loopguard-compare-services", strings.Join(k.rateLimitArgs(), " "))
	} else {
		e.note(k.Name(), "started with Kyverno's default client rate limit; every pod admission lists the namespace's Services through the API server (resource.List)")
	}
	k.proc, err = startProcess(filepath.Join(work, "kyverno.log"),
		[]string{
			"KYVERNO_NAMESPACE=" + kyvernoNS, "KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller",
			"KYVERNO_ROLE_NAME=kyverno:admission-controller", "KYVERNO_DEPLOYMENT=kyverno-admission-controller",
			"KYVERNO_POD_NAME=kyverno-compare", "KYVERNO_SVC=" + kyvernoSvc,
			"INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics",
		},
		bin, args...)
	if err != nil {
		return err
	}
	// Ready once it registered the webhook that validates its own policies.
	return waitUntil(ctx, 3*time.Minute, "Kyverno's policy webhook", func() (bool, error) {
		if k.proc.exited() {
			return false, fmt.Errorf("kyverno exited:\n%s", k.proc.tail())
		}
		_, err := e.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "kyverno-policy-validating-webhook-cfg", metav1.GetOptions{})
		return err == nil, err
	})
}

func (k *kyvernoEngine) InstallCasePolicies(ctx context.Context) error {
	files := []string{k.policyFile(), "portforward.yaml", "endpointslices.yaml"}
	for _, f := range files {
		b, err := k.e.policyFile("kyverno", f)
		if err != nil {
			return err
		}
		if err := k.e.applyRetry(ctx, b, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (k *kyvernoEngine) RemoveCasePolicies(ctx context.Context) error {
	for _, n := range []string{"cart-loopback", "cart-loopback-portforward", "cart-loopback-endpointslices"} {
		err := k.e.dyn.Resource(validatingPolicyGVR).Delete(ctx, n, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (k *kyvernoEngine) SetBenchPolicies(ctx context.Context, ns string, n int) error {
	b, err := k.e.policyFile("kyverno", k.policyFile())
	if err != nil {
		return err
	}
	var base map[string]any
	if err := yaml.Unmarshal(b, &base); err != nil {
		return err
	}
	return setNumbered(ctx, k.e, validatingPolicyGVR, "", "bench-", n, func(i int) *unstructured.Unstructured {
		o := deepCopyMap(base)
		o["metadata"] = map[string]any{"name": fmt.Sprintf("bench-%04d", i)}
		setPortsVariable(o, benchPort(i))
		// Only the engine's own bench namespace, whatever Kyverno derives
		// its webhooks' namespaceSelector from.
		o["spec"].(map[string]any)["matchConstraints"].(map[string]any)["namespaceSelector"] = map[string]any{
			"matchLabels": map[string]any{"kubernetes.io/metadata.name": ns}}
		return &unstructured.Unstructured{Object: o}
	})
}

func (k *kyvernoEngine) Kill(context.Context) error {
	k.proc.stop()
	return nil
}

func (k *kyvernoEngine) Stop(ctx context.Context) {
	e := k.e
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--wait=false", "validatingpolicies.policies.kyverno.io", "--all")
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--wait=false", "globalcontextentries.kyverno.io", "--all")
	k.proc.stop()
	deleteWebhooksNamed(ctx, e, "kyverno-")
	if k.crds != nil {
		e.deleteCRDs(ctx, k.crds)
	}
	_, _ = e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "--wait=false", "namespace", kyvernoNS)
}

// deleteWebhooksNamed removes the webhook configurations a peer registered
// itself.
func deleteWebhooksNamed(ctx context.Context, e *env, prefix string) {
	adm := e.cs.AdmissionregistrationV1()
	if l, err := adm.ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			if strings.HasPrefix(w.Name, prefix) {
				_ = adm.ValidatingWebhookConfigurations().Delete(ctx, w.Name, metav1.DeleteOptions{})
			}
		}
	}
	if l, err := adm.MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, w := range l.Items {
			if strings.HasPrefix(w.Name, prefix) {
				_ = adm.MutatingWebhookConfigurations().Delete(ctx, w.Name, metav1.DeleteOptions{})
			}
		}
	}
}
