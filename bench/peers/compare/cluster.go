package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Namespaces: the policies of every engine select namespaces labelled
// enforceLabel; fillNS holds the filler pods and is selected by none.
const (
	casesNS      = "cmp-cases"
	benchPrefix  = "cmp-bench-" // + engine name, or "none" for the baseline
	fillNS       = "cmp-fill"
	enforceLabel = "loopguard-compare/enforce"
	// notLabelPrefix + engine marks a bench namespace another engine owns:
	// each engine's webhooks leave it alone (namespaceSelector
	// DoesNotExist), so that while every engine runs, exactly one judges
	// each bench namespace.
	notLabelPrefix = "loopguard-compare/not-"
	baselineName   = "none"
)

// allEngines is every engine the harness knows, for the isolation labels.
var allEngines = []string{"loopguard", "gatekeeper", "kyverno", "kyverno-apicall", "vap"}

func benchNSFor(engine string) string { return benchPrefix + engine }

// benchNamespaceLabels: the bench namespace of engine (or of the baseline)
// is enforced and marked as not belonging to every other engine.
func benchNamespaceLabels(engine string) map[string]string {
	l := map[string]string{}
	if engine != baselineName {
		l[enforceLabel] = "true"
	}
	for _, o := range allEngines {
		if o != engine {
			l[notLabelPrefix+o] = "true"
		}
	}
	return l
}

func (e *env) prepareNamespaces(ctx context.Context) error {
	type nsDef struct {
		name   string
		labels map[string]string
	}
	nss := []nsDef{{casesNS, map[string]string{enforceLabel: "true"}}, {fillNS, nil}, {otherNS, nil}, {benchNSFor(baselineName), benchNamespaceLabels(baselineName)}}
	for _, n := range allEngines {
		nss = append(nss, nsDef{benchNSFor(n), benchNamespaceLabels(n)})
	}
	for _, ns := range nss {
		_, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: ns.labels}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create namespace %s: %w", ns.name, err)
		}
	}
	return e.cleanCases(ctx)
}

// ensureNamespace creates a namespace, first waiting for an earlier one of
// the same name to finish terminating.
func (e *env) ensureNamespace(ctx context.Context, name string) error {
	err := waitUntil(ctx, 3*time.Minute, "namespace "+name+" to finish terminating", func() (bool, error) {
		ns, err := e.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && ns.DeletionTimestamp == nil, err
	})
	if err != nil {
		return err
	}
	_, err = e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %s: %w", name, err)
	}
	return nil
}

// cleanCases deletes what a case run created for real (pods without a node
// go away at once).
func (e *env) cleanCases(ctx context.Context) error {
	e.releaseTerminating(ctx)
	if err := e.cs.CoreV1().Pods(casesNS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("failed to delete the case pods: %w", err)
	}
	svcs, err := e.cs.CoreV1().Services(casesNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range svcs.Items {
		if err := e.cs.CoreV1().Services(casesNS).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// fillPods creates n pods in fillNS (they stay Pending: no node), so each
// engine starts with them in its caches.
func (e *env) fillPods(ctx context.Context, n int) error {
	have, err := e.cs.CoreV1().Pods(fillNS).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	if len(have.Items) >= n {
		return nil
	}
	start := len(have.Items)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill-%05d", i), Namespace: fillNS,
						Labels: map[string]string{"app": "filler", "shard": fmt.Sprint(i % 50)}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1",
						Ports: []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}}}}},
				}
				_, err := e.cs.CoreV1().Pods(fillNS).Create(ctx, p, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := start; i < n; i++ {
		select {
		case err := <-errs:
			close(next)
			wg.Wait()
			return fmt.Errorf("failed to create filler pods: %w", err)
		case next <- i:
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("failed to create filler pods: %w", err)
	default:
	}
	return nil
}

func (e *env) deleteFillPods(ctx context.Context) {
	e.logf("deleting the filler pods")
	_ = e.cs.CoreV1().Pods(fillNS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
}

// loopguard's own webhook stays registered on the compare cluster (hack/dev.sh
// registers it); while a peer is measured it is removed, so that exactly one
// engine judges each request.
func (e *env) loopguardWebhookYAML() ([]byte, error) {
	p := filepath.Join(e.opts.devDir, "webhook.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("failed to read loopguard's webhook configuration %s: %w", p, err)
	}
	return b, nil
}

func (e *env) unregisterLoopguard(ctx context.Context) error {
	b, err := e.loopguardWebhookYAML()
	if err != nil {
		return err
	}
	_, err = e.kubectlRun(ctx, b, "delete", "--ignore-not-found", "-f", "-")
	return err
}

func (e *env) registerLoopguard(ctx context.Context) error {
	b, err := e.loopguardWebhookYAML()
	if err != nil {
		return err
	}
	return e.apply(ctx, b)
}

// casePod is a pod labelled app=cart declaring port on container "envoy".
func casePod(ns, name string, port int32, proto corev1.Protocol) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/app:1"},
			{Name: "envoy", Image: "registry.invalid/envoy:1", Ports: []corev1.ContainerPort{{ContainerPort: port, Protocol: proto}}},
		}},
	}
}

// waitEnforced waits until a dry-run pod declaring port in ns is refused.
func (e *env) waitEnforced(ctx context.Context, ns string, port int32, timeout time.Duration) error {
	return waitUntil(ctx, timeout, fmt.Sprintf("a pod declaring %d in %s to be refused", port, ns), func() (bool, error) {
		_, err := e.cs.CoreV1().Pods(ns).Create(ctx, casePod(ns, fmt.Sprintf("probe-%d", port), port, ""), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			return false, fmt.Errorf("admitted")
		}
		return isAdmissionDenial(err), err
	})
}

// waitAdmits waits until a dry-run pod declaring port in ns is admitted.
func (e *env) waitAdmits(ctx context.Context, ns string, port int32, timeout time.Duration) error {
	return waitUntil(ctx, timeout, fmt.Sprintf("a pod declaring %d in %s to be admitted", port, ns), func() (bool, error) {
		_, err := e.cs.CoreV1().Pods(ns).Create(ctx, casePod(ns, fmt.Sprintf("probe-%d", port), port, ""), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil, err
	})
}

// isAdmissionDenial tells a refusal by an admission webhook or policy from
// other errors (validation, connection).
func isAdmissionDenial(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	if strings.Contains(msg, "denied the request") {
		return true // webhooks answer 403 (loopguard, Gatekeeper) or 400 (Kyverno)
	}
	return (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) && strings.Contains(msg, "ValidatingAdmissionPolicy")
}
