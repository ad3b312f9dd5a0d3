package hostnet

import (
	"fmt"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/internal/podview"
)

// Reasons a pod can enter the network namespace of other pods on its node,
// and so reach their loopback-only ports without any NetworkPolicy seeing
// it ("a compromised machine can connect to services on localhost").
const (
	// RiskPrivileged: a privileged container sees the node's devices and
	// every capability: it can nsenter any pod's network namespace.
	RiskPrivileged = "Privileged"
	// RiskHostPIDCapability: hostPID shows every process of the node, and
	// SYS_ADMIN or SYS_PTRACE lets it join their namespaces
	// (/proc/<pid>/ns/net).
	RiskHostPIDCapability = "HostPIDCapability"
	// RiskHostPath: a hostPath mount of the node's /proc, of the network
	// namespace files, or of a container runtime socket (which starts a
	// container in any pod's namespaces).
	RiskHostPath = "HostPath"
	// RiskHostNetworkNetAdmin: in the node's network namespace with
	// NET_ADMIN it can rewrite the node's routing and netfilter rules that
	// carry traffic into every pod.
	RiskHostNetworkNetAdmin = "HostNetworkNetAdmin"
)

// Risk is one reason a pod can enter other pods' network namespaces on its
// node.
type Risk struct {
	// Reason is one of the Risk* constants.
	Reason string
	// Field is the path of the field that grants it.
	Field string
	// Detail says it in a few words: "privileged container debug".
	Detail string
}

func (r Risk) String() string { return r.Detail + " (" + r.Field + ")" }

// sensitiveHostPaths are node files that open other pods' network
// namespaces: a hostPath of one of them, or of a directory above one (/run
// holds the containerd socket), is a way in. Lexical paths: /var/run is
// usually a symlink to /run, so both spellings are listed.
var sensitiveHostPaths = []string{
	"/proc",
	"/run/netns", "/var/run/netns",
	"/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock",
	"/run/k3s/containerd/containerd.sock",
	"/run/docker.sock", "/var/run/docker.sock", "/var/run/dockershim.sock", "/run/cri-dockerd.sock", "/var/run/cri-dockerd.sock",
	"/run/crio/crio.sock", "/var/run/crio/crio.sock",
}

// sensitiveHostTrees are directories any file below which is a way in:
// /proc/<pid>/ns/net, /run/netns/<name>.
var sensitiveHostTrees = []string{"/proc", "/run/netns", "/var/run/netns"}

// sensitiveHostPath reports whether a hostPath mount of p reaches a
// sensitive node file.
func sensitiveHostPath(p string) bool {
	if p == "" {
		return false
	}
	p = path.Clean("/" + p)
	for _, s := range sensitiveHostPaths {
		if p == s || p == "/" || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	for _, t := range sensitiveHostTrees {
		if strings.HasPrefix(p, t+"/") {
			return true
		}
	}
	return false
}

// normCap spells a capability the way the runtimes compare them: upper
// case, without the CAP_ prefix.
func normCap(c corev1.Capability) string {
	return strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
}

// containerRef is one container of any kind, with its field path.
type containerRef struct {
	name  string
	field string
	sc    *corev1.SecurityContext
}

func containersOf(spec *corev1.PodSpec) []containerRef {
	var out []containerRef
	for i, c := range spec.InitContainers {
		out = append(out, containerRef{c.Name, fmt.Sprintf("spec.initContainers[%d]", i), c.SecurityContext})
	}
	for i, c := range spec.Containers {
		out = append(out, containerRef{c.Name, fmt.Sprintf("spec.containers[%d]", i), c.SecurityContext})
	}
	for i, c := range spec.EphemeralContainers {
		out = append(out, containerRef{c.Name, fmt.Sprintf("spec.ephemeralContainers[%d]", i), c.SecurityContext})
	}
	return out
}

// addedCaps returns the capabilities of want that the container adds
// ("ALL" grants them all), in want's order, with the index of the entry.
func addedCaps(sc *corev1.SecurityContext, want ...string) (names []string, index int) {
	if sc == nil || sc.Capabilities == nil {
		return nil, -1
	}
	index = -1
	for i, c := range sc.Capabilities.Add {
		n := normCap(c)
		for _, w := range want {
			if n == w || n == "ALL" {
				if index < 0 {
					index = i
				}
				if n == "ALL" {
					return []string{"ALL"}, i
				}
				names = append(names, n)
			}
		}
	}
	return names, index
}

// NodeMateRisks names every way a pod of this spec can enter the network namespaces of
// the other pods on its node: a privileged container (init, app or
// ephemeral), hostPID with SYS_ADMIN or SYS_PTRACE, a hostPath mount of
// /proc, of the network namespace files or of a container runtime socket
// (or a directory above one), hostNetwork with NET_ADMIN. None for a pod
// that can do none of these. Pure: the controller, its per-node report and
// loopguard audit all call it.
func NodeMateRisks(spec *corev1.PodSpec) []Risk {
	if spec == nil {
		return nil
	}
	var out []Risk
	for _, c := range containersOf(spec) {
		sc := c.sc
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			out = append(out, Risk{Reason: RiskPrivileged, Field: c.field + ".securityContext.privileged",
				Detail: fmt.Sprintf("privileged container %s", c.name)})
			continue // it can do everything below as well
		}
		if spec.HostPID {
			if caps, i := addedCaps(sc, "SYS_ADMIN", "SYS_PTRACE"); len(caps) > 0 {
				out = append(out, Risk{Reason: RiskHostPIDCapability, Field: fmt.Sprintf("%s.securityContext.capabilities.add[%d]", c.field, i),
					Detail: fmt.Sprintf("hostPID and %s in container %s", strings.Join(caps, ", "), c.name)})
			}
		}
		if spec.HostNetwork {
			if caps, i := addedCaps(sc, "NET_ADMIN"); len(caps) > 0 {
				out = append(out, Risk{Reason: RiskHostNetworkNetAdmin, Field: fmt.Sprintf("%s.securityContext.capabilities.add[%d]", c.field, i),
					Detail: fmt.Sprintf("hostNetwork and %s in container %s", strings.Join(caps, ", "), c.name)})
			}
		}
	}
	for i, v := range spec.Volumes {
		if v.HostPath != nil && sensitiveHostPath(v.HostPath.Path) {
			out = append(out, Risk{Reason: RiskHostPath, Field: fmt.Sprintf("spec.volumes[%d].hostPath.path", i),
				Detail: fmt.Sprintf("hostPath %s (volume %s)", v.HostPath.Path, v.Name)})
		}
	}
	return out
}

// NodeMate is a pod that can enter the network namespaces of protected
// pods on its node.
type NodeMate struct {
	Namespace, Name, Node string
	Risks                 []Risk
	// Protected are the protected pods on the same node (namespace/name),
	// sorted.
	Protected []string
}

// Details returns the risks' details, for status and reports.
func (m NodeMate) Details() []string {
	out := make([]string, len(m.Risks))
	for i, r := range m.Risks {
		out[i] = r.Detail
	}
	return out
}

// Summary is a one-line description for reports and Events.
func (m NodeMate) Summary() string {
	return fmt.Sprintf("pod %s/%s on node %q can enter the network namespace of protected pods on that node (%s), and so reach their loopback-only ports: %s",
		m.Namespace, m.Name, m.Node, abbreviate(m.Protected, 3), strings.Join(m.Details(), "; "))
}

func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// live reports whether a pod is on a node and may run there.
func live(p *podview.Pod) bool {
	return p.NodeName != "" && p.DeletionTimestamp == nil &&
		p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed
}

// NodeMates returns the pods of candidates that can enter the network
// namespaces of a protected pod (one for which protected returns true)
// on the same node, other than themselves, sorted by namespace/name.
// candidates may be any pods: those without a risk are ignored.
func NodeMates(candidates, pods []*podview.Pod, protected func(*podview.Pod) bool) []NodeMate {
	byNode := map[string][]string{}
	seen := map[string]bool{}
	for _, p := range pods {
		k := p.Namespace + "/" + p.Name
		if live(p) && !seen[k] && protected(p) {
			seen[k] = true
			byNode[p.NodeName] = append(byNode[p.NodeName], k)
		}
	}
	var out []NodeMate
	done := map[string]bool{}
	for _, c := range candidates {
		k := c.Namespace + "/" + c.Name
		if !live(c) || done[k] {
			continue
		}
		done[k] = true
		var prot []string
		for _, q := range byNode[c.NodeName] {
			if q != k {
				prot = append(prot, q)
			}
		}
		if len(prot) == 0 {
			continue
		}
		risks := NodeMateRisks(c.TrimmedSpec)
		if len(risks) == 0 {
			continue
		}
		sort.Strings(prot)
		out = append(out, NodeMate{Namespace: c.Namespace, Name: c.Name, Node: c.NodeName, Risks: risks, Protected: prot})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}
