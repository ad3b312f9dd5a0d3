package webhooks

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// judgedAcrossNamespaces reports whether obj is judged by the policies of
// other namespaces than its own: an EndpointSlice or Endpoints object may
// list any pod's IP (CVE-2021-25740), so it is reviewed whenever a policy
// exists anywhere, even where none applies in its own namespace.
func (v *ExposureValidator) judgedAcrossNamespaces(obj runtime.Object) bool {
	switch obj.(type) {
	case *discoveryv1.EndpointSlice, *corev1.Endpoints:
		return v.Index.Count() > 0
	}
	return false
}
