package webhooks

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/kinds"
)

// judgedAcrossNamespaces reports whether obj is judged by the policies of
// other namespaces than its own: an EndpointSlice or Endpoints object may
// list any pod's IP (CVE-2021-25740), so it is reviewed whenever a policy
// exists anywhere, even where none applies in its own namespace.
func (v *ExposureValidator) judgedAcrossNamespaces(obj runtime.Object) bool {
	return judgedByAddress(obj) && v.Index.Count() > 0
}

// judgedByAddress reports whether obj is of a kind judged by the pods its
// addresses reach (kinds.RoleEndpoints).
func judgedByAddress(obj runtime.Object) bool {
	k, ok := kinds.Of(obj)
	return ok && k.Role == kinds.RoleEndpoints
}
