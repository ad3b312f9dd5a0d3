// Package addrindex indexes, in the informer cache, pods by the IPs they
// own and EndpointSlices by the addresses and pods they name, cluster-wide:
// an address of an EndpointSlice or Endpoints object in any namespace may
// be a protected pod's (CVE-2021-25740). The webhook resolves a review's
// addresses through it (Resolve) and the audit finds the slices that name
// a policy's pods (SlicesNaming).
package addrindex

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// The field indexes Register adds.
const (
	// PodIP indexes pods by a bucket of each IP they own (PodIPBucket of
	// rules.PodIPs): an index set per IP would be a map of its own for
	// every pod (about 200 bytes a pod, 30 MB of live heap at 150,000
	// pods) where a bucket's is shared by a few dozen; PodsNamed keeps
	// the exact owners.
	PodIP = "loopguard.io/pod-ip"
	// SliceIP indexes EndpointSlices by their addresses.
	SliceIP = "loopguard.io/endpointslice-ip"
	// SlicePod indexes EndpointSlices by the pods their targetRefs name,
	// as namespace/name.
	SlicePod = "loopguard.io/endpointslice-pod"
)

// podIPBuckets is how many buckets PodIP spreads the IPs over: at the
// Kubernetes maximum of 150,000 pods, about 37 pods a bucket.
const podIPBuckets = 4096

// PodIPBucket is the PodIP index value of ip.
func PodIPBucket(ip string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ip))
	return strconv.Itoa(int(h.Sum32() % podIPBuckets))
}

// PodIPs is the PodIP index function: the buckets of the pod's IPs.
func PodIPs(o client.Object) []string {
	p, ok := podview.From(o)
	if !ok {
		return nil
	}
	var out []string
	for _, ip := range rules.PodIPs(p) {
		if b := PodIPBucket(ip); !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// SliceIPs is the SliceIP index function.
func SliceIPs(o client.Object) []string {
	ips, _ := rules.EndpointRefs(o)
	return ips
}

// SlicePods is the SlicePod index function.
func SlicePods(o client.Object) []string {
	_, pods := rules.EndpointRefs(o)
	out := make([]string, len(pods))
	for i, k := range pods {
		out[i] = k.String()
	}
	return out
}

// Register adds the indexes to the cache: the pods' cluster-wide only (a
// pod is looked up by IP across namespaces; clusterindex says why).
func Register(ctx context.Context, c cache.Cache) error {
	if err := clusterindex.Register(ctx, c, &corev1.Pod{}, PodIP, PodIPs); err != nil {
		return fmt.Errorf("failed to index pods by %s: %w", PodIP, err)
	}
	for _, ix := range []struct {
		name    string
		extract client.IndexerFunc
	}{{SliceIP, SliceIPs}, {SlicePod, SlicePods}} {
		if err := c.IndexField(ctx, &discoveryv1.EndpointSlice{}, ix.name, ix.extract); err != nil {
			return fmt.Errorf("failed to index EndpointSlices by %s: %w", ix.name, err)
		}
	}
	return nil
}

// PodsNamed returns the pods of any namespace that own one of obj's
// addresses or that its targetRefs name; a pod may come twice.
func PodsNamed(ctx context.Context, c client.Reader, obj runtime.Object) ([]*podview.Pod, error) {
	ips, refs := rules.EndpointRefs(obj)
	var pods []*podview.Pod
	for _, ip := range ips {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bucket, err := clusterindex.Pods(ctx, c, PodIP, PodIPBucket(ip))
		if err != nil {
			return nil, fmt.Errorf("failed to list pods by IP from cache: %w", err)
		}
		for _, p := range bucket {
			if slices.Contains(rules.PodIPs(p), ip) {
				pods = append(pods, p)
			}
		}
	}
	for _, k := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := clusterindex.Pod(ctx, c, k.Namespace, k.Name)
		if apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("failed to read pod %s from cache: %w", k, err)
		}
		pods = append(pods, p)
	}
	return pods, nil
}

// SlicesNaming returns the hand-written EndpointSlices, in any namespace,
// that list one of pods' IPs or name one of them by targetRef: those the
// EndpointSlice controller wrote for a Service (ControllerWritten) are the
// Service's findings and left out. The slices are the cache's own, not
// copies: callers only read them.
func SlicesNaming(ctx context.Context, c client.Reader, pods []*podview.Pod) ([]*discoveryv1.EndpointSlice, error) {
	seen := map[client.ObjectKey]bool{}
	var out []*discoveryv1.EndpointSlice
	add := func(field, value string) error {
		// Read only, as the slices returned are: no copy of each.
		found, err := clusterindex.EndpointSlices(ctx, c, field, value)
		if err != nil {
			return err
		}
		for _, s := range found {
			key := client.ObjectKeyFromObject(s)
			if seen[key] {
				continue
			}
			seen[key] = true
			controllers, err := ControllerWritten(ctx, c, s)
			if err != nil {
				return err
			}
			if !controllers {
				out = append(out, s)
			}
		}
		return nil
	}
	for _, p := range pods {
		for _, ip := range rules.PodIPs(p) {
			if err := add(SliceIP, ip); err != nil {
				return nil, err
			}
		}
		if err := add(SlicePod, rules.PodKey{Namespace: p.Namespace, Name: p.Name}.String()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ControllerWritten reports whether the EndpointSlice controller wrote s
// for a Service with a selector (rules.ControllerWrittenSlice), reading the
// Service its label names from c.
func ControllerWritten(ctx context.Context, c client.Reader, s *discoveryv1.EndpointSlice) (bool, error) {
	name := s.Labels[discoveryv1.LabelServiceName]
	if s.Labels[discoveryv1.LabelManagedBy] != rules.EndpointSliceControllerName || name == "" {
		return false, nil
	}
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: name}, &svc, client.UnsafeDisableDeepCopy); apierrors.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("failed to read service %s/%s: %w", s.Namespace, name, err)
	}
	return rules.ControllerWrittenSlice(s, &svc), nil
}
