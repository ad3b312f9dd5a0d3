package webhooks

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/policyindex"
)

// LiveNamespaceLabels reads a namespace's labels with r, which must be an
// API reader (manager.GetAPIReader), not the cache the index lags behind.
// Only the metadata is fetched.
func LiveNamespaceLabels(r client.Reader) policyindex.LabelsFunc {
	return func(ctx context.Context, namespace string) (map[string]string, error) {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := r.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, err
		}
		return ns.Labels, nil
	}
}
