// Command registrationbench measures, in one run on the dev cluster, what
// an admission webhook adds to a pod create (server-side dry-run, timed
// end to end through the API server), in interleaved rounds:
//
//	(a) no webhook at all (no policy anywhere: loopguard registers nothing)
//	(b) bench/emptywebhook, which admits everything, served like loopguard
//	(c) loopguard in a namespace a LoopbackService guards
//	(d) loopguard's effect in a namespace no policy applies to
//	(e) a ValidatingAdmissionPolicy (CEL) with the same rule, for comparison
//
// Every phase admits the same pod (the policy protects a port it does not
// declare), so each does its full evaluation. It then reads loopguard's
// review counter for the unguarded namespace (expected 0). Start the empty
// webhook first (make bench-registration does). Cleans up after itself.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/loopguard/loopguard/bench/internal/benchobj"
	"github.com/loopguard/loopguard/internal/webhookconfig"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	nsOpen, nsEmpty, nsGuarded, nsVAP = "rb-open", "rb-empty", "rb-guarded", "rb-vap"
	nsEmptyMC                         = "rb-empty-mc"
	name                              = "registrationbench"
	loopguardVWC                      = "loopguard-validating-webhook-configuration"
)

var (
	lbsGVR  = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "loopbackservices"}
	clbsGVR = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "clusterloopbackservices"}
)

type env struct {
	cs  *kubernetes.Clientset
	dyn *dynamic.DynamicClient
	ca  []byte
	url string
}

func main() {
	kubeconfig := flag.String("kubeconfig", ".dev/kubeconfig", "kubeconfig of the dev cluster")
	n := flag.Int("n", 300, "timed dry-run creates per phase and round")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	emptyURL := flag.String("empty-url", "https://127.0.0.1:9450/validate-empty", "URL of bench/emptywebhook")
	caFile := flag.String("ca", ".dev/pki/webhook/ca.crt", "CA of the webhooks' serving certificate")
	metricsURL := flag.String("metrics", "https://127.0.0.1:8443/metrics", "loopguard's metrics endpoint")
	emptyMetrics := flag.String("empty-metrics", "http://127.0.0.1:9451/metrics", "bench/emptywebhook's metrics endpoint")
	loopguardPath := flag.String("loopguard-path", "/validate-exposure", "the path of loopguard's pods webhook")
	emptyPath := flag.String("empty-path", "/validate-empty", "the path of bench/emptywebhook")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	check(err)
	cfg.QPS, cfg.Burst = 5000, 5000
	ca, err := os.ReadFile(*caFile)
	check(err)
	e := &env{cs: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg), ca: ca, url: *emptyURL}
	ctx := context.Background()
	for _, ns := range []string{nsOpen, nsEmpty, nsGuarded, nsVAP, nsEmptyMC} {
		// A previous run's cleanup may still be deleting it.
		waitFor("namespace "+ns+" of a previous run to be deleted", func() bool {
			got, err := e.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err) || (err == nil && got.DeletionTimestamp == nil)
		})
		_, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			check(err)
		}
	}
	defer e.cleanup(ctx)
	check(e.createVAP(ctx))
	others := e.otherPolicies(ctx)

	phases := []struct{ label, ns string }{
		{"(a) no webhook at all", nsOpen},
		{"(b) empty webhook (admits all)", nsEmpty},
		{"(c) loopguard, guarded namespace", nsGuarded},
		{"(d) loopguard, unguarded namespace", nsOpen},
		{"(e) ValidatingAdmissionPolicy (CEL)", nsVAP},
		// (b) registered with the match conditions of loopguard's pods
		// webhook: what the API server's CEL costs before any call, so
		// that (c) - (f) is loopguard's own work.
		{"(f) empty webhook + loopguard's matchConditions", nsEmptyMC},
	}
	managerMetrics := func() (string, error) { return e.metricsText(ctx, *metricsURL) }
	before, err := e.breakdownScrape(ctx, managerMetrics, *emptyMetrics)
	check(err)
	res := make([][]stats, len(phases))
	for r := range *rounds {
		check(e.teardown(ctx))
		res[0] = append(res[0], e.run(ctx, []string{phases[0].ns}, *n)...)
		check(e.setup(ctx))
		// (b) to (e) request by request in turn, so that the load of the
		// machine weighs on each alike.
		var nss []string
		for _, ph := range phases[1:] {
			nss = append(nss, ph.ns)
		}
		for i, s := range e.run(ctx, nss, *n) {
			res[i+1] = append(res[i+1], s)
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, *rounds)
	}

	fmt.Printf("registrationbench: server-side dry-run pod creates, n=%d per phase and round, %d rounds, concurrency 1\n", *n, *rounds)
	if others != "" {
		fmt.Printf("note: other policies exist (%s): in (a) loopguard's configuration is scoped to them, not empty\n", others)
	}
	fmt.Printf("%-48s %20s %20s %10s\n", "phase", "p50 ms (min..max)", "p99 ms (min..max)", "req/s")
	for i, ph := range phases {
		fmt.Printf("%-48s %20s %20s %10.0f\n", ph.label, spread(res[i], func(s stats) float64 { return s.p50 }),
			spread(res[i], func(s stats) float64 { return s.p99 }), med(res[i], func(s stats) float64 { return s.rps }))
	}
	base := med(res[0], func(s stats) float64 { return s.p50 })
	added := func(i int) float64 { return med(res[i], func(s stats) float64 { return s.p50 }) - base }
	fmt.Printf("added p50 over (a): (b) empty webhook %.3f ms, (c) loopguard guarded %.3f ms, (d) loopguard unguarded %.3f ms, (e) VAP %.3f ms\n",
		added(1), added(2), added(3), added(4))
	if added(1) > 0 {
		ratio := added(2) / added(1)
		verdict := "meets"
		if ratio > 1.15 {
			verdict = "MISSES"
		}
		fmt.Printf("(c)/(b) added latency: %.2f (target <= 1.15: %s)\n", ratio, verdict)
	}
	fmt.Printf("(d) - (a) p50: %+.3f ms (target: nothing measurable)\n", added(3))
	// (b), (c) and (d) ran interleaved request by request: over (d), which
	// calls no webhook, the comparison is free of the load's drift.
	overD := func(i int) float64 {
		return med(res[i], func(s stats) float64 { return s.p50 }) - med(res[3], func(s stats) float64 { return s.p50 })
	}
	if overD(1) > 0 {
		fmt.Printf("interleaved, over (d): (b) %.3f ms, (c) %.3f ms, (c)/(b) %.2f\n", overD(1), overD(2), overD(2)/overD(1))
	}
	fmt.Printf("interleaved: (f) - (b) %.3f ms (the API server's matchConditions), (c) - (f) %.3f ms (loopguard's own work over an empty webhook registered alike), (c)/(f) added over (a) %.2f\n",
		overD(5)-overD(1), overD(2)-overD(5), added(2)/added(5))
	if after, err := e.breakdownScrape(ctx, managerMetrics, *emptyMetrics); err != nil {
		fmt.Printf("breakdown: %v\n", err)
	} else {
		printBreakdown(before, after, *loopguardPath, *emptyPath)
	}
	if counts, err := e.reviews(ctx, *metricsURL); err != nil {
		fmt.Printf("loopguard metrics: %v\n", err)
	} else {
		fmt.Printf("loopguard_admission_decisions_total by namespace: %s=%.0f (target 0), %s=%.0f\n", nsOpen, counts[nsOpen], nsGuarded, counts[nsGuarded])
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "registrationbench:", err)
		os.Exit(1)
	}
}

func (e *env) otherPolicies(ctx context.Context) string {
	var out []string
	for _, gvr := range []schema.GroupVersionResource{lbsGVR, clbsGVR} {
		l, err := e.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		check(err)
		for _, p := range l.Items {
			if p.GetNamespace() != nsGuarded {
				out = append(out, strings.TrimPrefix(p.GetNamespace()+"/"+p.GetName(), "/"))
			}
		}
	}
	return strings.Join(out, ", ")
}

// refused reports whether a pod declaring 15000 is refused in ns (the
// configuration reached the API server).
func (e *env) refused(ctx context.Context, ns string) bool {
	p := benchobj.Pod("rb-", ns)
	p.Spec.Containers[1].Ports[0].ContainerPort = 15000
	_, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err)
}

func waitFor(what string, f func() bool) {
	deadline := time.Now().Add(time.Minute)
	for !f() {
		if time.Now().After(deadline) {
			check(fmt.Errorf("timed out waiting for %s", what))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// teardown: no policy, no empty webhook, no VAP binding; waits until
// loopguard's configuration is empty (when no other policy exists).
func (e *env) teardown(ctx context.Context) error {
	del := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err := del(e.dyn.Resource(lbsGVR).Namespace(nsGuarded).Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		return err
	}
	if err := del(e.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		return err
	}
	if err := del(e.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		return err
	}
	waitFor("loopguard to unregister the benchmark namespace", func() bool {
		vwc, err := e.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, loopguardVWC, metav1.GetOptions{})
		check(err)
		return !slices.ContainsFunc(vwc.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool {
			return w.NamespaceSelector != nil && strings.Contains(w.NamespaceSelector.String(), nsGuarded) && !strings.Contains(w.NamespaceSelector.String(), "NotIn")
		})
	})
	waitFor("the benchmark namespace to be unguarded", func() bool { return !e.refused(ctx, nsGuarded) && !e.refused(ctx, nsVAP) })
	return nil
}

// setup: the LoopbackService, the empty webhook and the VAP binding;
// waits until each refuses its port (the API server has them).
func (e *env) setup(ctx context.Context) error {
	lbs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
		"metadata": map[string]any{"name": name, "namespace": nsGuarded},
		"spec": map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "cart"}},
			"ports": []any{map[string]any{"port": int64(15000)}}},
	}}
	if _, err := e.dyn.Resource(lbsGVR).Namespace(nsGuarded).Create(ctx, lbs, metav1.CreateOptions{}); err != nil {
		return err
	}
	fail, none, equiv := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Equivalent
	timeout := int32(5)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "empty.registrationbench.loopguard.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &e.url, CABundle: e.ca},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy:           &fail,
			MatchPolicy:             &equiv,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{nsEmpty}}}},
		}},
	}
	mc := *vwc.Webhooks[0].DeepCopy()
	mc.Name = "empty-mc.registrationbench.loopguard.io"
	mc.NamespaceSelector.MatchExpressions[0].Values = []string{nsEmptyMC}
	mc.MatchConditions = webhookconfig.Kinds["pods.loopguard.io"].MatchConditions
	if len(mc.MatchConditions) == 0 {
		return fmt.Errorf("loopguard's pods webhook has no match conditions to copy (internal/webhookconfig)")
	}
	vwc.Webhooks = append(vwc.Webhooks, mc)
	if _, err := e.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		return err
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": nsVAP}}},
		},
	}
	if _, err := e.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return err
	}
	waitFor("loopguard to enforce the benchmark policy", func() bool {
		p, err := e.dyn.Resource(lbsGVR).Namespace(nsGuarded).Get(ctx, name, metav1.GetOptions{})
		check(err)
		conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
		return slices.ContainsFunc(conds, func(c any) bool {
			m, _ := c.(map[string]any)
			return m["type"] == "Enforced" && m["status"] == "True"
		}) && e.refused(ctx, nsGuarded)
	})
	waitFor("the VAP binding", func() bool { return e.refused(ctx, nsVAP) })
	return nil
}

func (e *env) createVAP(ctx context.Context) error {
	vap := benchobj.LoopbackPortVAP(name)
	_, err := e.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (e *env) cleanup(ctx context.Context) {
	_ = e.teardown(ctx)
	_ = e.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	_ = e.cs.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
	for _, ns := range []string{nsOpen, nsEmpty, nsGuarded, nsVAP, nsEmptyMC} {
		_ = e.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
}

type stats struct{ p50, p99, rps float64 }

// run times n dry-run creates in each namespace of nss, one request per
// namespace in turn, after 30 untimed rounds (connections warm,
// configuration propagated).
func (e *env) run(ctx context.Context, nss []string, n int) []stats {
	create := func(ns string) float64 {
		t0 := time.Now()
		_, err := e.cs.CoreV1().Pods(ns).Create(ctx, benchobj.Pod("rb-", ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		check(err)
		return float64(time.Since(t0)) / float64(time.Millisecond)
	}
	for range 30 {
		for _, ns := range nss {
			create(ns)
		}
	}
	lat := make([][]float64, len(nss))
	var total float64
	for range n {
		for j, ns := range nss {
			d := create(ns)
			lat[j] = append(lat[j], d)
			total += d
		}
	}
	out := make([]stats, len(nss))
	for j := range nss {
		var sum float64
		for _, d := range lat[j] {
			sum += d
		}
		slices.Sort(lat[j])
		out[j] = stats{p50: lat[j][n/2], p99: lat[j][min(n-1, n*99/100)], rps: float64(n) / (sum / 1000)}
	}
	return out
}

func spread(ss []stats, f func(stats) float64) string {
	vals := make([]float64, len(ss))
	for i, s := range ss {
		vals[i] = f(s)
	}
	slices.Sort(vals)
	return fmt.Sprintf("%.3f (%.3f..%.3f)", vals[len(vals)/2], vals[0], vals[len(vals)-1])
}

func med(ss []stats, f func(stats) float64) float64 {
	vals := make([]float64, len(ss))
	for i, s := range ss {
		vals[i] = f(s)
	}
	slices.Sort(vals)
	return vals[len(vals)/2]
}

// reviews reads loopguard_admission_decisions_total per namespace.
func (e *env) reviews(ctx context.Context, url string) (map[string]float64, error) {
	body, err := e.metricsText(ctx, url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "loopguard_admission_decisions_total{") {
			continue
		}
		for _, ns := range []string{nsOpen, nsGuarded} {
			if strings.Contains(line, `namespace="`+ns+`"`) {
				var v float64
				fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v)
				out[ns] += v
			}
		}
	}
	return out, nil
}

// metricsText reads loopguard's metrics with the token of a ServiceAccount
// bound to the metrics-reader ClusterRole.
func (e *env) metricsText(ctx context.Context, url string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: nsOpen}}
	if _, err := e.cs.CoreV1().ServiceAccounts(nsOpen).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "loopguard-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: nsOpen}}}
	if _, err := e.cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	tok, err := e.cs.CoreV1().ServiceAccounts(nsOpen).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback, self-signed
	var body string
	for range 50 { // the authorizer may not see the new binding at once
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Status.Token)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			body = string(b)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body == "" {
		return "", fmt.Errorf("metrics endpoint %s refused the reader token", url)
	}
	return body, nil
}
