package main

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/internal/bindscan"
	"github.com/loopguard/loopguard/internal/rules"
)

// podTarget is a pod to check, with what the report needs about it.
type podTarget struct {
	pod    *corev1.Pod
	target bindscan.Target
	// containers maps runtime container IDs (without the "containerd://"
	// scheme) to container names.
	containers map[string]string
	// protected: a policy protects some of the pod's ports (the pod is in
	// status.pods); a pod scanned only for discovery is not.
	protected bool
}

// envFor returns the policies that may apply in a namespace (the policy
// index's Env in the agent, a fixed env in tests).
type envFor func(namespace string) *rules.Env

// selectTargets returns the running pods of the node that a policy
// protects, with the ranges it protects. A hostNetwork pod is checked in
// the node's namespace for the ports its own policies protect, and only
// its own processes' sockets count: the node's namespace is shared with
// every other hostNetwork pod and with the node's daemons. With discover,
// every running pod is a target, and its listeners outside the protected
// ranges are asked for too.
func selectTargets(pods []corev1.Pod, env envFor, discover bool) []podTarget {
	var out []podTarget
	for i := range pods {
		pod := &pods[i]
		if pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
			continue
		}
		ranges := rules.ProtectedRanges(env(pod.Namespace), pod.Labels)
		if len(ranges) == 0 && !discover {
			continue
		}
		t := podTarget{pod: pod, containers: containerNames(pod), protected: len(ranges) > 0}
		t.target = bindscan.Target{UID: string(pod.UID), HostNetwork: pod.Spec.HostNetwork, Ranges: scanRanges(ranges), Discover: discover, Clients: len(ranges) > 0}
		out = append(out, t)
	}
	return out
}

// scanRanges converts the rules' ranges to the scanner's.
func scanRanges(in []rules.PortRange) []bindscan.PortRange {
	out := make([]bindscan.PortRange, 0, len(in))
	for _, r := range in {
		out = append(out, bindscan.PortRange{Protocol: bindscan.Protocol(r.Protocol), From: uint16(r.From), To: uint16(r.To)})
	}
	return out
}

// containerNames maps the IDs of the pod's containers (every kind) to
// their names, from the pod's status ("containerd://<id>").
func containerNames(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	add := func(statuses []corev1.ContainerStatus) {
		for _, s := range statuses {
			if _, id, ok := strings.Cut(s.ContainerID, "://"); ok {
				out[id] = s.Name
			}
		}
	}
	add(pod.Status.ContainerStatuses)
	add(pod.Status.InitContainerStatuses)
	add(pod.Status.EphemeralContainerStatuses)
	return out
}

// containerRuntime returns the scheme of the pod's container IDs
// ("containerd"), to spell the IDs in the report as the pod's status does.
func containerRuntime(pod *corev1.Pod) string {
	for _, s := range pod.Status.ContainerStatuses {
		if scheme, _, ok := strings.Cut(s.ContainerID, "://"); ok {
			return scheme
		}
	}
	return ""
}
