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
	kyvernoPort   = 9743 // webhook on 127.0.0.1
	kyvernoSvc    = "kyverno-svc"
)

var validatingPolicyGVR = schema.GroupVersionResource{Group: "policies.kyverno.io", Version: "v1", Resource: "validatingpolicies"}

// kyvernoEngine runs Kyverno's admission controller (cmd/kyverno, built from
// bench/peers/tools/kyverno) as a host process. It manages its own
// certificates (secrets in the kyverno namespace) and registers its own
// webhooks; --serverIP makes them URL-based, on 127.0.0.1.
type kyvernoEngine struct {
	e    *env
	proc *process
	crds []byte
}

func (k *kyvernoEngine) Name() string { return "kyverno" }
func (k *kyvernoEngine) PID() int     { return k.proc.pid() }

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
	// chart's defaults do.
	if err := e.ensureNamespace(ctx, kyvernoNS); err != nil {
		return err
	}
	base := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno, namespace: %[1]s}
data:
  webhooks: '[{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","%[1]s"]}]}}]'
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno-metrics, namespace: %[1]s}
`, kyvernoNS)
	if err := e.apply(ctx, []byte(base)); err != nil {
		return err
	}
	if err := e.apply(ctx, k.crds); err != nil {
		return fmt.Errorf("failed to install Kyverno's CRDs: %w", err)
	}
	work := filepath.Join(e.opts.devDir, "peers/kyverno")
	k.proc, err = startProcess(filepath.Join(work, "kyverno.log"),
		[]string{
			"KYVERNO_NAMESPACE=" + kyvernoNS, "KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller",
			"KYVERNO_ROLE_NAME=kyverno:admission-controller", "KYVERNO_DEPLOYMENT=kyverno-admission-controller",
			"KYVERNO_POD_NAME=kyverno-compare", "KYVERNO_SVC=" + kyvernoSvc,
			"INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics",
		},
		bin,
		"--kubeconfig="+e.kubecfg,
		fmt.Sprintf("--serverIP=127.0.0.1:%d", kyvernoPort),
		"--webhookServerHost=127.0.0.1", fmt.Sprintf("--webhookServerPort=%d", kyvernoPort),
		"--caSecretName="+kyvernoSvc+"."+kyvernoNS+".svc.kyverno-tls-ca",
		"--tlsSecretName="+kyvernoSvc+"."+kyvernoNS+".svc.kyverno-tls-pair",
		"--metricsHost=127.0.0.1", fmt.Sprintf("--metricsPort=%d", kyvernoPort+1),
		fmt.Sprintf("--controllerRuntimeMetricsAddress=127.0.0.1:%d", kyvernoPort+2),
		"--tlsKeyAlgorithm=ECDSA")
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
	for _, f := range []string{"validatingpolicy.yaml", "portforward.yaml"} {
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
	for _, n := range []string{"cart-loopback", "cart-loopback-portforward"} {
		err := k.e.dyn.Resource(validatingPolicyGVR).Delete(ctx, n, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (k *kyvernoEngine) SetBenchPolicies(ctx context.Context, n int) error {
	b, err := k.e.policyFile("kyverno", "validatingpolicy.yaml")
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
	k.proc.stop()
	deleteWebhooksNamed(ctx, e, "kyverno-")
	if k.crds != nil {
		e.deleteYAML(ctx, k.crds)
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
