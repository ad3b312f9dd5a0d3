package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/bench/internal/proc"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/rules"
)

// The floor (-floor): what this machine's control plane needs, with no
// manager at all, to converge the same policies when a controller that
// costs nothing writes only what any controller must: each policy's
// managed NetworkPolicies (one per namespace, its own port closed, so no
// later update for an overlapping policy) and one status patch, with no
// Event. The manager is stopped before the first policy, so its watches
// cost the API server nothing either. Every figure of such a run is a lower
// bound for any implementation of the convergence on this machine.

// stopManager stops the dev cluster's manager and waits until it is gone.
func stopManager(run string) error {
	pid := proc.ReadPID(filepath.Join(run, "manager.pid"))
	if pid <= 0 {
		return fmt.Errorf("no manager PID in %s", run)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("failed to stop the manager (PID %d): %w", pid, err)
	}
	return waitGone(pid, time.Minute)
}

// waitGone waits until process pid no longer exists.
func waitGone(pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("process %d still runs after %s", pid, limit)
}

// floorWrite is one policy to converge: its kind, key and generation.
type floorWrite struct {
	gvr       schema.GroupVersionResource
	obj       *unstructured.Unstructured
	namespace []string // where its NetworkPolicies go
}

// startFloor watches the bench's policies and, on workers goroutines,
// writes each one's NetworkPolicies and status as soon as its creation is
// seen. expect is each policy's matchedPods (convergence.expect).
func (b *bench) startFloor(ctx context.Context, expect map[string]int, workers int) {
	queue := make(chan floorWrite, b.size.Policies+b.size.ClusterPolicies)
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(b.dyn, 0)
	for _, gvr := range []schema.GroupVersionResource{lbsGVR, clbsGVR} {
		_, _ = dyn.ForResource(gvr).Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				return
			}
			if _, ours := expect[u.GetNamespace()+"/"+u.GetName()]; ours {
				queue <- floorWrite{gvr: gvr, obj: u, namespace: b.floorNamespaces(u)}
			}
		}})
	}
	dyn.Start(ctx.Done())
	dyn.WaitForCacheSync(ctx.Done())
	for range workers {
		go func() {
			for {
				select {
				case w := <-queue:
					if err := b.floorConverge(ctx, w, expect[w.obj.GetNamespace()+"/"+w.obj.GetName()]); err != nil && ctx.Err() == nil {
						fail(err)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// floorNamespaces are the namespaces a bench policy applies in: its own,
// or those of its namespaceSelector's group (layout.go).
func (b *bench) floorNamespaces(u *unstructured.Unstructured) []string {
	if u.GetNamespace() != "" {
		return []string{u.GetNamespace()}
	}
	group, _, _ := unstructured.NestedString(u.Object, "spec", "namespaceSelector", "matchLabels", groupLabel)
	var out []string
	for i := range b.size.Namespaces {
		if NSGroup(i) == group {
			out = append(out, NSName(i))
		}
	}
	return out
}

// floorConverge writes one policy's NetworkPolicies, then its status.
func (b *bench) floorConverge(ctx context.Context, w floorWrite, matched int) error {
	u := w.obj
	sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "podSelector", "matchLabels")
	ports, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
	var closed []rules.PortRange
	for _, p := range ports {
		if n, ok := p.(map[string]any)["port"].(int64); ok {
			closed = append(closed, rules.PortRange{Protocol: corev1.ProtocolTCP, From: int32(n), To: int32(n)})
		}
	}
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Namespace: u.GetNamespace(), Name: u.GetName()}
	if u.GetNamespace() == "" {
		ref.Kind = rules.KindClusterLoopbackService
	}
	owner := metav1.OwnerReference{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName(), UID: u.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	for _, ns := range w.namespace {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: rules.ManagedNetworkPolicyName(ref),
			Labels:          map[string]string{netpol.LabelManagedBy: netpol.ManagedBy},
			OwnerReferences: []metav1.OwnerReference{owner},
		}, Spec: netpol.Desired(metav1.LabelSelector{MatchLabels: sel}, closed)}
		if _, err := b.cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("floor: NetworkPolicy %s/%s: %w", ns, np.Name, err)
		}
	}
	patch, err := json.Marshal(floorStatus(u.GetGeneration(), matched, time.Now()))
	if err != nil {
		return err
	}
	_, err = b.dyn.Resource(w.gvr).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("floor: status of %s: %w", strings.TrimPrefix(u.GetNamespace()+"/"+u.GetName(), "/"), err)
	}
	return nil
}

// floorStatus is the least status the bench counts as current:
// observedGeneration, matchedPods, and Ready and Enforced for the
// generation.
func floorStatus(gen int64, matched int, now time.Time) map[string]any {
	cond := func(t, reason string) map[string]any {
		return map[string]any{"type": t, "status": "True", "reason": reason, "message": "floor",
			"observedGeneration": gen, "lastTransitionTime": now.UTC().Format(time.RFC3339)}
	}
	return map[string]any{"status": map[string]any{
		"observedGeneration": gen, "matchedPods": matched,
		"conditions": []any{cond("Ready", "Floor"), cond("Enforced", "Floor")},
	}}
}
