package podview

import (
	"sync"
	"unsafe"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/internal/slim"
)

// maxSharedSpecs bounds the shared specs' table, as slim bounds its own:
// past it the table starts over.
const maxSharedSpecs = 1 << 14

// NewTransform returns the cache transform for pods that stores a Pod:
// slim.NewPodTransform's trimming and sharing, then FromPod. Objects other
// than *corev1.Pod pass unchanged (a cache.DeletedFinalStateUnknown, for
// one).
func NewTransform() func(any) (any, error) {
	trim := slim.NewPodTransform()
	c := NewConverter()
	return func(obj any) (any, error) {
		out, err := trim(obj)
		if p, ok := out.(*corev1.Pod); ok && err == nil {
			return c.FromPod(p), nil
		}
		return out, err
	}
}

// Converter makes Pods from pods slim.NewPodTransform trimmed, sharing
// equal specs. Safe for concurrent use.
type Converter struct {
	mu    sync.Mutex
	specs map[specKey]*corev1.PodSpec
}

// NewConverter returns a Converter with no spec shared yet.
func NewConverter() *Converter { return &Converter{} }

// specKey identifies a trimmed spec whose container lists are the
// interner's canonical ones: equal lists are the same array, so the
// arrays' addresses and lengths say which lists they are (the table holds
// the spec, and with it the arrays, so an address is not reused while it
// is a key).
type specKey struct {
	ctrs, inits      unsafe.Pointer
	nCtrs, nInits    int
	hostNet, hostPID bool
}

// FromPod returns the Pod of p, a pod slim's transform returned (its
// labels, owner references and container lists already the canonical
// ones). p's spec is shared when it has no ephemeral container and no
// hostPath volume (those are rare, and kept as they are); p itself is no
// longer needed.
func (c *Converter) FromPod(p *corev1.Pod) *Pod { return withSpec(p, c.share(&p.Spec)) }

// share returns the shared spec equal to spec without its node name, or
// a copy of spec without it when it is not shareable.
func (c *Converter) share(spec *corev1.PodSpec) *corev1.PodSpec {
	if len(spec.EphemeralContainers) > 0 || len(spec.Volumes) > 0 {
		return ownSpec(spec)
	}
	k := specKey{nCtrs: len(spec.Containers), nInits: len(spec.InitContainers), hostNet: spec.HostNetwork, hostPID: spec.HostPID}
	if k.nCtrs > 0 {
		k.ctrs = unsafe.Pointer(&spec.Containers[0])
	}
	if k.nInits > 0 {
		k.inits = unsafe.Pointer(&spec.InitContainers[0])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.specs[k]; ok {
		return s
	}
	if c.specs == nil || len(c.specs) >= maxSharedSpecs {
		c.specs = map[specKey]*corev1.PodSpec{}
	}
	s := ownSpec(spec)
	c.specs[k] = s
	return s
}
