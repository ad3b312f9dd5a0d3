// Command scalebench measures the controller at scale against the dev
// control plane (make dev-up, DEV_NODE=0 is enough): it creates N
// LoopbackServices and M pods (some hostNetwork) over many namespaces, and
// reports how long until every managed NetworkPolicy exists and every
// status is current, the manager's peak RSS, and the API writes the manager
// makes in a quiet minute (target 0). It deletes what it made.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/loopguard/loopguard/bench/internal/proc"
)

var lbsGVR = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "loopbackservices"}

func main() {
	kubeconfig := flag.String("kubeconfig", ".dev/kubeconfig", "admin kubeconfig of the dev cluster")
	pidFile := flag.String("manager-pid-file", ".dev/run/manager.pid", "the manager's PID file (for its RSS)")
	namespaces := flag.Int("namespaces", 100, "namespaces (at most 500)")
	policies := flag.Int("policies", 1000, "LoopbackServices in all (at most 5000)")
	pods := flag.Int("pods", 10000, "pods in all (at most 20000)")
	hostNet := flag.Int("hostnetwork-pods", 200, "of which hostNetwork")
	quiet := flag.Duration("quiet", 60*time.Second, "quiet window to count the manager's writes in")
	flag.Parse()
	if *namespaces > 500 || *policies > 5000 || *pods > 20000 || *namespaces < 1 {
		fail(fmt.Errorf("bounds: namespaces<=500, policies<=5000, pods<=20000"))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = 2000, 2000
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	pid := proc.ReadPID(*pidFile)

	nsName := func(i int) string { return fmt.Sprintf("scale-%03d", i) }
	defer func() {
		fmt.Fprintln(os.Stderr, "cleaning up (namespaces deleted in the background)")
		for i := 0; i < *namespaces; i++ {
			_ = cs.CoreV1().Namespaces().Delete(ctx, nsName(i), metav1.DeleteOptions{})
		}
	}()
	for i := 0; i < *namespaces; i++ {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}, metav1.CreateOptions{}); err != nil {
			fail(err)
		}
	}
	perNS := *policies / *namespaces
	podsPerPolicy := *pods / *policies
	start := time.Now()
	// Pods first (as in a cluster that adopts loopguard), then policies.
	parallel(*pods, 16, func(i int) error {
		pol := i / podsPerPolicy
		ns := nsName(pol % *namespaces)
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: ns, Labels: map[string]string{"app": fmt.Sprintf("app-%04d", pol)}},
			Spec: corev1.PodSpec{HostNetwork: i < *hostNet, Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
	fmt.Printf("created %d pods (%d hostNetwork) in %s\n", *pods, *hostNet, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	parallel(perNS**namespaces, 16, func(i int) error {
		ns := nsName(i % *namespaces)
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "loopguard.io/v1alpha1", "kind": "LoopbackService",
			"metadata": map[string]any{"name": fmt.Sprintf("lbs-%04d", i), "namespace": ns},
			"spec": map[string]any{
				"podSelector":       map[string]any{"matchLabels": map[string]any{"app": fmt.Sprintf("app-%04d", i)}},
				"ports":             []any{map[string]any{"port": int64(15000)}},
				"enforcementAction": "Audit", "hostNetwork": "Audit",
			},
		}}
		_, err := dyn.Resource(lbsGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		return err
	})
	created := time.Since(start)
	total := perNS * *namespaces
	fmt.Printf("created %d LoopbackServices in %s\n", total, created.Round(time.Millisecond))

	var npsAt, statusAt time.Duration
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if npsAt == 0 {
			nps, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=loopguard"})
			if err == nil && countScale(nps.Items) >= total {
				npsAt = time.Since(start)
				fmt.Printf("every managed NetworkPolicy exists after %s\n", npsAt.Round(time.Millisecond))
			}
		}
		list, err := dyn.Resource(lbsGVR).Namespace("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		current := 0
		for _, it := range list.Items {
			if !strings.HasPrefix(it.GetNamespace(), "scale-") {
				continue
			}
			og, _, _ := unstructured.NestedInt64(it.Object, "status", "observedGeneration")
			mp, _, _ := unstructured.NestedInt64(it.Object, "status", "matchedPods")
			if og == it.GetGeneration() && mp == int64(podsPerPolicy) {
				current++
			}
		}
		if current >= total && npsAt != 0 {
			statusAt = time.Since(start)
			fmt.Printf("every status current (observedGeneration, matchedPods=%d) after %s\n", podsPerPolicy, statusAt.Round(time.Millisecond))
			break
		}
	}
	if statusAt == 0 {
		fail(fmt.Errorf("statuses not current after 10 minutes"))
	}
	rv0 := writesNow(ctx, dyn, cs)
	fmt.Printf("quiet window of %s: ", *quiet)
	time.Sleep(*quiet)
	fmt.Printf("objects the manager changed: %d (target 0)\n", writesNow(ctx, dyn, cs)-rv0)
	if pid > 0 {
		fmt.Printf("manager RSS now %s, peak %s\n", procStatus(pid, "VmRSS"), procStatus(pid, "VmHWM"))
	}
}

// writesNow sums a fingerprint of the manager's objects: the resource
// versions of policies and managed NetworkPolicies; any write changes it.
func writesNow(ctx context.Context, dyn dynamic.Interface, cs *kubernetes.Clientset) int {
	n := 0
	list, _ := dyn.Resource(lbsGVR).Namespace("").List(ctx, metav1.ListOptions{})
	for _, it := range list.Items {
		v, _ := strconv.Atoi(it.GetResourceVersion())
		n += v % 1000003
	}
	nps, _ := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=loopguard"})
	for _, np := range nps.Items {
		v, _ := strconv.Atoi(np.ResourceVersion)
		n += v % 1000003
	}
	return n
}

func countScale(items []networkingv1.NetworkPolicy) int {
	n := 0
	for _, it := range items {
		if strings.HasPrefix(it.Namespace, "scale-") {
			n++
		}
	}
	return n
}

func parallel(n, workers int, f func(i int) error) {
	var wg sync.WaitGroup
	ch := make(chan int)
	errs := make(chan error, 1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := f(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errs:
		fail(err)
	default:
	}
}

func procStatus(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, key+":"))
		}
	}
	return "?"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scalebench:", err)
	os.Exit(1)
}
