// Command apibench measures what admission adds to a pod create, end to end
// through a real API server: server-side dry-run creations timed (a) with no
// admission policy, (b) with loopguard's webhook evaluating a policy that
// selects the pod, and (c) with an equivalent built-in
// ValidatingAdmissionPolicy (CEL) that refuses the same containerPort. All
// three admit the same pod, so each does its full evaluation. It runs
// against the dev control plane (make dev-up) and cleans up after itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/loopguard/loopguard/bench/internal/benchobj"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Namespaces: loopguard's webhook never judges kube-public (its
// namespaceSelector excludes it), so phases a and c pay no webhook call.
const (
	plainNS     = "kube-public"
	loopguardNS = "apibench-loopguard"
	vapName     = "apibench-loopback-ports"
)

func main() {
	kubeconfig := flag.String("kubeconfig", ".dev/kubeconfig", "kubeconfig of the cluster")
	n := flag.Int("n", 300, "dry-run creations per phase (at most 5000)")
	concurrency := flag.Int("concurrency", 1, "parallel requests")
	rounds := flag.Int("rounds", 3, "times each phase is repeated, interleaved, to show the spread")
	flag.Parse()
	if *n > 5000 || *n < 1 || *concurrency < 1 || *concurrency > 64 {
		fail(fmt.Errorf("-n must be 1..5000 and -concurrency 1..64"))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = 5000, 5000
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()

	if err := setup(ctx, cs, dyn); err != nil {
		fail(err)
	}
	defer cleanup(ctx, cs, dyn)

	phases := []struct {
		name, ns string
		vap      bool
	}{
		{"a: no admission policy", plainNS, false},
		{"b: loopguard webhook", loopguardNS, false},
		{"c: ValidatingAdmissionPolicy (CEL)", plainNS, true},
	}
	results := make([][]stats, len(phases))
	for r := 0; r < *rounds; r++ {
		for i, ph := range phases {
			if err := setVAPBinding(ctx, cs, ph.vap); err != nil {
				fail(err)
			}
			s, err := run(ctx, cs, ph.ns, *n, *concurrency)
			if err != nil {
				fail(fmt.Errorf("%s: %w", ph.name, err))
			}
			results[i] = append(results[i], s)
		}
	}
	fmt.Printf("server-side dry-run pod creates, n=%d per round, concurrency=%d, rounds=%d\n", *n, *concurrency, *rounds)
	fmt.Printf("%-38s %18s %18s %14s\n", "phase", "p50 (min..max)", "p99 (min..max)", "req/s (median)")
	for i, ph := range phases {
		fmt.Printf("%-38s %18s %18s %14.0f\n", ph.name, spread(results[i], func(s stats) time.Duration { return s.p50 }),
			spread(results[i], func(s stats) time.Duration { return s.p99 }), median(results[i], func(s stats) float64 { return s.rps }))
	}
	base := median(results[0], func(s stats) float64 { return float64(s.p50) })
	lg := median(results[1], func(s stats) float64 { return float64(s.p50) }) - base
	vap := median(results[2], func(s stats) float64 { return float64(s.p50) }) - base
	fmt.Printf("added p50 latency over (a): loopguard %v, VAP %v", time.Duration(lg).Round(time.Microsecond), time.Duration(vap).Round(time.Microsecond))
	if vap > 0 {
		fmt.Printf(", ratio loopguard/VAP %.2f", lg/vap)
	}
	fmt.Println()
}

type stats struct {
	p50, p99 time.Duration
	rps      float64
}

func spread(ss []stats, f func(stats) time.Duration) string {
	lo, hi := f(ss[0]), f(ss[0])
	vals := make([]float64, len(ss))
	for i, s := range ss {
		v := f(s)
		lo, hi = min(lo, v), max(hi, v)
		vals[i] = float64(v)
	}
	sort.Float64s(vals)
	med := time.Duration(vals[len(vals)/2])
	r := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("%sms (%s..%s)", r(med), r(lo), r(hi))
}

func median(ss []stats, f func(stats) float64) float64 {
	vals := make([]float64, len(ss))
	for i, s := range ss {
		vals[i] = f(s)
	}
	sort.Float64s(vals)
	return vals[len(vals)/2]
}

func run(ctx context.Context, cs *kubernetes.Clientset, ns string, n, concurrency int) (stats, error) {
	lat := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     int
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t0 := time.Now()
				_, err := cs.CoreV1().Pods(ns).Create(ctx, benchobj.Pod("apibench-", ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return stats{}, firstErr
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return stats{p50: lat[n/2], p99: lat[min(n-1, n*99/100)], rps: float64(n) / elapsed.Seconds()}, nil
}

var lbsGVR = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "loopbackservices"}

func setup(ctx context.Context, cs *kubernetes.Clientset, dyn dynamic.Interface) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loopguardNS}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	lbs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
		"metadata": map[string]any{"name": "envoy-admin", "namespace": loopguardNS},
		"spec": map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "cart"}},
			"ports":       []any{map[string]any{"port": int64(15000)}},
		},
	}}
	if _, err := dyn.Resource(lbsGVR).Namespace(loopguardNS).Create(ctx, lbs, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The same rule in CEL (benchobj.LoopbackPortVAP).
	vap := benchobj.LoopbackPortVAP(vapName)
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return waitFor(func() (bool, error) {
		p := benchobj.Pod("apibench-", loopguardNS)
		p.Spec.Containers[1].Ports[0].ContainerPort = 15000
		_, err := cs.CoreV1().Pods(loopguardNS).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsForbidden(err), err
	}, "loopguard to enforce the benchmark policy")
}

// setVAPBinding binds the CEL policy to kube-public, or unbinds it.
func setVAPBinding(ctx context.Context, cs *kubernetes.Clientset, on bool) error {
	bindings := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	if !on {
		err := bindings.Delete(ctx, vapName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		// The API server drops the binding asynchronously: wait until the
		// pod it refuses is admitted again.
		return waitFor(func() (bool, error) {
			p := benchobj.Pod("apibench-", plainNS)
			p.Spec.Containers[1].Ports[0].ContainerPort = 15000
			_, err := cs.CoreV1().Pods(plainNS).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err == nil, err
		}, "the ValidatingAdmissionPolicy binding to go away")
	}
	_, err := bindings.Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: vapName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        vapName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": plainNS}}},
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return waitFor(func() (bool, error) {
		p := benchobj.Pod("apibench-", plainNS)
		p.Spec.Containers[1].Ports[0].ContainerPort = 15000
		_, err := cs.CoreV1().Pods(plainNS).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), err
	}, "the ValidatingAdmissionPolicy to enforce")
}

// waitFor polls cond for up to 30s.
func waitFor(cond func() (bool, error), what string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after 30s waiting for %s (last: %v)", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cleanup(ctx context.Context, cs *kubernetes.Clientset, dyn dynamic.Interface) {
	_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, vapName, metav1.DeleteOptions{})
	_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, vapName, metav1.DeleteOptions{})
	_ = dyn.Resource(lbsGVR).Namespace(loopguardNS).Delete(ctx, "envoy-admin", metav1.DeleteOptions{})
	_ = cs.CoreV1().Namespaces().Delete(ctx, loopguardNS, metav1.DeleteOptions{})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "apibench:", err)
	os.Exit(1)
}
