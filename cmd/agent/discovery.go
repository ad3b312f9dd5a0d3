package main

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// buildDiscovery is status.discovery: per pod, its listening sockets on
// ports no policy protects for it, one entry per protocol, address and
// port (the sockets of a SO_REUSEPORT group are one entry), without PIDs
// or container IDs so that a restart alone does not rewrite the report.
// Bounded by MaxDiscoveredPods and MaxDiscoveredListeners.
func buildDiscovery(o scanOutcome) *v1alpha1.DiscoveryStatus {
	d := &v1alpha1.DiscoveryStatus{}
	for i, t := range o.targets {
		if i >= len(o.results) || len(o.results[i].Discovered) == 0 {
			continue
		}
		dp := v1alpha1.DiscoveredPod{Namespace: t.pod.Namespace, Name: t.pod.Name, UID: t.pod.UID, HostNetwork: t.pod.Spec.HostNetwork}
		ips := podIPs(t.pod)
		seen := map[string]bool{}
		for _, l := range o.results[i].Discovered {
			key := l.Socket.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			if len(dp.Listeners) == v1alpha1.MaxDiscoveredListeners {
				d.Truncated = true
				break
			}
			dl := v1alpha1.DiscoveredListener{
				Protocol: corev1.Protocol(l.Protocol), AddressClass: addressClass(l.Addr, ips),
				Address: l.Addr.String(), Port: int32(l.Port), Process: truncate(l.Process, 256),
			}
			if l.ContainerID != "" {
				dl.Container = t.containers[l.ContainerID]
			}
			dp.Listeners = append(dp.Listeners, dl)
		}
		d.Pods = append(d.Pods, dp)
	}
	slices.SortFunc(d.Pods, func(a, b v1alpha1.DiscoveredPod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	if len(d.Pods) > v1alpha1.MaxDiscoveredPods {
		d.Pods, d.Truncated = d.Pods[:v1alpha1.MaxDiscoveredPods], true
	}
	return d
}

// addressClass classifies a bound address: loopback (v4-mapped too),
// wildcard, one of the pod's IPs, or other.
func addressClass(a netip.Addr, podIPs []netip.Addr) v1alpha1.AddressClass {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return v1alpha1.AddressClassLoopback
	case a.IsUnspecified():
		return v1alpha1.AddressClassWildcard
	case slices.Contains(podIPs, a):
		return v1alpha1.AddressClassPodIP
	}
	return v1alpha1.AddressClassOther
}

// podIPs are the pod's IPs from its status.
func podIPs(pod *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	add(pod.Status.PodIP)
	for _, ip := range pod.Status.PodIPs {
		add(ip.IP)
	}
	return out
}

// discoveredPods is how many pods status.discovery lists (0 without it).
func discoveredPods(st v1alpha1.NodeBindReportStatus) int {
	if st.Discovery == nil {
		return 0
	}
	return len(st.Discovery.Pods)
}
