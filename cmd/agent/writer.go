package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// fieldOwner is the agent's server-side apply field manager.
const fieldOwner = "loopguard-agent"

// reportWriter applies the node's NodeBindReport. It writes only when the
// findings changed or the last write is older than refresh, so a quiet
// node costs one write per refresh period, not one per scan; scannedAt is
// then at most refresh old, which readers allow for (status.scanInterval
// and the refresh are documented together in README "Agent").
type reportWriter struct {
	c client.Client
	// reader reads the report uncached: the agent may get it, not list or
	// watch it (RBAC).
	reader  client.Reader
	node    *corev1.Node
	refresh time.Duration

	ensured   bool
	last      *v1alpha1.NodeBindReportStatus
	lastWrite time.Time
}

// previous returns the status a former agent on this node left, for the
// conditions' transition times; nil when there is none.
func (w *reportWriter) previous(ctx context.Context) (*v1alpha1.NodeBindReportStatus, error) {
	var nbr v1alpha1.NodeBindReport
	if err := w.reader.Get(ctx, client.ObjectKey{Name: w.node.Name}, &nbr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get NodeBindReport %s: %w", w.node.Name, err)
	}
	w.ensured = true
	return &nbr.Status, nil
}

// write applies st unless it says what the last write said and that write
// is recent; it reports whether it wrote.
func (w *reportWriter) write(ctx context.Context, st v1alpha1.NodeBindReportStatus, now time.Time) (bool, error) {
	if w.last != nil && sameFindings(w.last, &st) && now.Sub(w.lastWrite) < w.refresh {
		return false, nil
	}
	if err := w.applyStatus(ctx, st); err != nil {
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		// Deleted under us (or never created): create it and retry once.
		w.ensured = false
		if err := w.applyStatus(ctx, st); err != nil {
			return false, err
		}
	}
	w.last, w.lastWrite = &st, now
	return true, nil
}

func (w *reportWriter) applyStatus(ctx context.Context, st v1alpha1.NodeBindReportStatus) error {
	if !w.ensured {
		if err := w.applyObject(ctx); err != nil {
			return err
		}
		w.ensured = true
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return fmt.Errorf("failed to convert the status of NodeBindReport %s: %w", w.node.Name, err)
	}
	u := w.skeleton()
	u.Object["status"] = status
	if err := w.c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to apply the status of NodeBindReport %s: %w", w.node.Name, err)
	}
	return nil
}

// applyObject creates the report (or re-asserts its metadata): named after
// the node and owned by it, so the garbage collector removes it with the
// node.
func (w *reportWriter) applyObject(ctx context.Context) error {
	u := w.skeleton()
	u.SetLabels(map[string]string{"app.kubernetes.io/name": "loopguard", "app.kubernetes.io/component": "agent"})
	u.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Node", Name: w.node.Name, UID: w.node.UID,
	}})
	if err := w.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to apply NodeBindReport %s: %w", w.node.Name, err)
	}
	return nil
}

func (w *reportWriter) skeleton() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind("NodeBindReport")
	u.SetName(w.node.Name)
	return u
}
