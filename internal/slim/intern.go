package slim

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of an interner's tables: past them a table starts over (pods
// cached before keep what they hold; only sharing is lost for a while), so
// a cluster whose pods share nothing (unique labels on every pod) costs at
// most this much beside the pods themselves.
const (
	maxInternedStrings = 1 << 16
	maxInternedSets    = 1 << 14
)

// NewPodTransform returns the cache transform for Pods: Pod's trimming,
// then what many pods hold equal is shared instead of held by each. The
// decoder gives every pod its own copy of its namespace, node, phase,
// label map, owner references and containers; pods of one workload on one
// node repeat all of them. A label map is about 300 bytes however few
// labels it holds, an owner reference about 200, a container 408 however
// few of its fields Pod keeps: at 150,000 pods of a few thousand
// workloads, shared, they are 110 to 130 MB less live heap (the container
// lists 52 MB of it, measured at 150,000 pods of one container each).
//
// The shared values are read-only, like everything in the pod cache
// (app.CacheOptions: cached pods are never copied, and code that reads a
// pod from the cache must not modify it).
func NewPodTransform() func(any) (any, error) {
	in := &interner{}
	return func(obj any) (any, error) {
		out, err := Pod(obj)
		if pod, ok := out.(*corev1.Pod); ok && err == nil {
			in.pod(pod)
		}
		return out, err
	}
}

// interner holds the canonical copies. Informers call a transform from
// one goroutine each; the lock keeps it safe if one is ever shared.
type interner struct {
	mu     sync.Mutex
	strs   map[string]string
	labels map[string]map[string]string
	owners map[string][]metav1.OwnerReference
	ports  map[string][]corev1.ContainerPort
	ctrs   map[string][]corev1.Container
	key    strings.Builder
}

func (in *interner) pod(p *corev1.Pod) {
	in.mu.Lock()
	defer in.mu.Unlock()
	p.Namespace = in.str(p.Namespace)
	p.GenerateName = in.str(p.GenerateName)
	p.Labels = in.labelSet(p.Labels)
	p.OwnerReferences = in.ownerRefs(p.OwnerReferences)
	p.Spec.NodeName = in.str(p.Spec.NodeName)
	p.Status.Phase = corev1.PodPhase(in.str(string(p.Status.Phase)))
	p.Spec.Containers = in.containers(p.Spec.Containers)
	p.Spec.InitContainers = in.containers(p.Spec.InitContainers)
}

// containers returns the canonical list equal to cs, a list Pod trimmed:
// names, ports, restart policy, privileged and added capabilities, all in
// the key (a list counted, each string length-prefixed by keyOf).
func (in *interner) containers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return cs
	}
	for i := range cs {
		cs[i].Name = in.str(cs[i].Name)
		cs[i].Ports = in.portList(cs[i].Ports)
	}
	in.key.Reset()
	for _, c := range cs {
		restart, priv, caps := "-", "-", 0
		if c.RestartPolicy != nil {
			restart = "=" + string(*c.RestartPolicy)
		}
		if sc := c.SecurityContext; sc != nil {
			priv = boolPtr(sc.Privileged)
			if sc.Capabilities != nil {
				caps = len(sc.Capabilities.Add)
			}
		}
		in.keyOf(c.Name, restart, priv, strconv.Itoa(caps), strconv.Itoa(len(c.Ports)))
		if caps > 0 {
			for _, a := range c.SecurityContext.Capabilities.Add {
				in.keyOf(string(a))
			}
		}
		for _, p := range c.Ports {
			in.keyOf(p.Name, strconv.Itoa(int(p.HostPort)), strconv.Itoa(int(p.ContainerPort)), string(p.Protocol), p.HostIP)
		}
	}
	return canonical(&in.ctrs, in.key.String(), func() []corev1.Container { return cs })
}

// str returns the canonical copy of s.
func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := in.strs[s]; ok {
		return c
	}
	if in.strs == nil || len(in.strs) >= maxInternedStrings {
		in.strs = map[string]string{}
	}
	in.strs[s] = s
	return s
}

// keyOf writes each part length-prefixed, so that no two different lists
// of parts have the same key.
func (in *interner) keyOf(parts ...string) {
	for _, s := range parts {
		in.key.WriteString(strconv.Itoa(len(s)))
		in.key.WriteByte(':')
		in.key.WriteString(s)
	}
}

// labelSet returns the canonical map equal to m.
func (in *interner) labelSet(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	in.key.Reset()
	for _, k := range keys {
		in.keyOf(k, m[k])
	}
	return canonical(&in.labels, in.key.String(), func() map[string]string {
		c := make(map[string]string, len(m))
		for k, v := range m {
			c[in.str(k)] = in.str(v)
		}
		return c
	})
}

// ownerRefs returns the canonical list equal to refs.
func (in *interner) ownerRefs(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return refs
	}
	in.key.Reset()
	for _, r := range refs {
		in.keyOf(r.APIVersion, r.Kind, r.Name, string(r.UID), boolPtr(r.Controller), boolPtr(r.BlockOwnerDeletion))
	}
	return canonical(&in.owners, in.key.String(), func() []metav1.OwnerReference {
		for i := range refs {
			refs[i].APIVersion, refs[i].Kind = in.str(refs[i].APIVersion), in.str(refs[i].Kind)
		}
		return refs
	})
}

// portList returns the canonical list equal to ports.
func (in *interner) portList(ports []corev1.ContainerPort) []corev1.ContainerPort {
	if len(ports) == 0 {
		return ports
	}
	in.key.Reset()
	for _, p := range ports {
		in.keyOf(p.Name, strconv.Itoa(int(p.HostPort)), strconv.Itoa(int(p.ContainerPort)), string(p.Protocol), p.HostIP)
	}
	return canonical(&in.ports, in.key.String(), func() []corev1.ContainerPort {
		for i := range ports {
			ports[i].Name, ports[i].Protocol = in.str(ports[i].Name), corev1.Protocol(in.str(string(ports[i].Protocol)))
		}
		return ports
	})
}

// canonical returns table's value for key, or stores build's as it; a
// full table starts over.
func canonical[V any](table *map[string]V, key string, build func() V) V {
	if c, ok := (*table)[key]; ok {
		return c
	}
	if *table == nil || len(*table) >= maxInternedSets {
		*table = map[string]V{}
	}
	v := build()
	(*table)[key] = v
	return v
}

func boolPtr(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "t"
	}
	return "f"
}
