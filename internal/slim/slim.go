// Package slim trims objects before they enter the informer cache, keeping
// only what loopguard's rules and controllers read, so that a cluster with
// tens of thousands of pods stays cheap to watch.
package slim

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod is a cache transform (cache.TransformFunc) for Pods. It keeps
// metadata (without managedFields and annotations), the containers' names
// and ports, init containers' restart policies, hostNetwork, the node name,
// and the pod IPs and phase; and what hostnet.NodeMateRisks reads: hostPID,
// the containers' privileged flag and added capabilities, and hostPath
// volumes. Objects other than *corev1.Pod pass unchanged.
func Pod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	pod.Annotations = nil
	pod.Spec = corev1.PodSpec{
		Containers:          slimContainers(pod.Spec.Containers),
		InitContainers:      slimContainers(pod.Spec.InitContainers),
		EphemeralContainers: slimEphemeral(pod.Spec.EphemeralContainers),
		HostNetwork:         pod.Spec.HostNetwork,
		HostPID:             pod.Spec.HostPID,
		NodeName:            pod.Spec.NodeName,
		Volumes:             hostPathVolumes(pod.Spec.Volumes),
	}
	pod.Status = corev1.PodStatus{
		Phase:  pod.Status.Phase,
		PodIP:  pod.Status.PodIP,
		PodIPs: pod.Status.PodIPs,
	}
	return pod, nil
}

// slimContainers trims the containers in place: the decoder's slice is
// kept, not copied (a corev1.Container is 408 bytes however few of its
// fields are set, so a new slice was about 430 bytes a pod of live heap at
// 150,000 pods).
func slimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	for i := range cs {
		c := &cs[i]
		*c = corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy, SecurityContext: slimSecurityContext(c.SecurityContext)}
	}
	return cs
}

func slimEphemeral(cs []corev1.EphemeralContainer) []corev1.EphemeralContainer {
	if len(cs) == 0 {
		return nil
	}
	for i := range cs {
		c := &cs[i]
		var e corev1.EphemeralContainer
		e.Name, e.Ports = c.Name, c.Ports
		e.SecurityContext = slimSecurityContext(c.SecurityContext)
		*c = e
	}
	return cs
}

// slimSecurityContext keeps privileged and the added capabilities, nil
// when neither is set.
func slimSecurityContext(sc *corev1.SecurityContext) *corev1.SecurityContext {
	if sc == nil {
		return nil
	}
	out := &corev1.SecurityContext{Privileged: sc.Privileged}
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		out.Capabilities = &corev1.Capabilities{Add: sc.Capabilities.Add}
	}
	if out.Privileged == nil && out.Capabilities == nil {
		return nil
	}
	return out
}

// hostPathVolumes keeps, for a pod with a hostPath volume, each volume's
// name and the hostPath's path (the others by name only, so that field
// paths keep their indexes); nothing for a pod without one.
func hostPathVolumes(vs []corev1.Volume) []corev1.Volume {
	any := false
	for _, v := range vs {
		any = any || v.HostPath != nil
	}
	if !any {
		return nil
	}
	out := make([]corev1.Volume, len(vs))
	for i, v := range vs {
		out[i].Name = v.Name
		if v.HostPath != nil {
			out[i].HostPath = &corev1.HostPathVolumeSource{Path: v.HostPath.Path}
		}
	}
	return out
}

// EndpointSlice is a cache transform for EndpointSlices. Every slice is
// cached (a label does not tell a hand-written slice from the
// controller's: rules.ControllerWrittenSlice), so it keeps only what the
// rules read: metadata without managedFields and annotations, the address
// type, ports, and each endpoint's addresses and targetRef kind, namespace
// and name (no conditions, hostname, node, zone or hints). About 150 bytes
// per endpoint; a cluster whose Services select 10,000 pods caches about
// 2 MB of slices. Objects other than *discoveryv1.EndpointSlice pass
// unchanged.
func EndpointSlice(obj any) (any, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj, nil
	}
	s.ManagedFields = nil
	s.Annotations = nil
	eps := make([]discoveryv1.Endpoint, len(s.Endpoints))
	for i, ep := range s.Endpoints {
		eps[i].Addresses = ep.Addresses
		if r := ep.TargetRef; r != nil {
			eps[i].TargetRef = &corev1.ObjectReference{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
		}
	}
	s.Endpoints = eps
	return s, nil
}

// StripManagedFields is a cache transform that drops managedFields, which
// loopguard never reads, from any object.
func StripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}
