package webhooks

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/rules"
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

// endpointsCluster resolves the addresses of an EndpointSlice or Endpoints
// object through the cache's cluster-wide pod IP index, each pod judged by
// the policies of its namespace.
func (v *ExposureValidator) endpointsCluster(ctx context.Context, obj runtime.Object) (rules.Cluster, error) {
	r, err := addrindex.Resolve(ctx, v.Reader, obj, v.Index.Env)
	return rules.Cluster{Resolver: r}, err
}
