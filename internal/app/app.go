// Package app holds what every loopguard manager shares, below the webhook
// and the controllers: the scheme and the informer cache options. The
// wiring of the webhook and the controllers into a manager is
// cmd/manager/wiring.
package app

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	anpv1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/slim"
)

// ConcurrentReconciles is each controller's default number of workers
// (controller-runtime's is 1). A policy's reconcile waits on one or two
// API writes: one worker converged 2,000 policies over 30,000 pods at
// about 15 a second; a few in parallel keep the API server, not the
// round trips, the limit. One object is still never reconciled twice at
// once.
const ConcurrentReconciles = 4

// ClusterPolicyBatchPeriod is the default of --cluster-policy-batch-period
// (controllers.Options.ClusterPolicyBatchPeriod): a ClusterLoopbackService's
// status and NetworkPolicies follow a change in one of its namespaces at
// most this much later.
const ClusterPolicyBatchPeriod = time.Second

// Scheme returns the scheme with the built-in kinds and loopguard's API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(openreportsv1alpha1.AddToScheme(s))
	utilruntime.Must(anpv1alpha1.AddToScheme(s))
	return s
}

// CacheOptions trims what the informers keep: managedFields everywhere and,
// for pods, all but what the rules read.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: slim.StripManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			// Pods are read, never written, by the manager, and the
			// controllers list thousands of them per reconcile: a deep
			// copy of each was half the manager's CPU while 2,000
			// policies converged over 30,000 pods. Code that reads a
			// pod from the cache must not modify it.
			&corev1.Pod{}: {Transform: podview.NewTransform(), UnsafeDisableDeepCopy: ptr.To(true)},
			// Every slice: the audit judges hand-written ones (and those
			// mirrored from hand-written Endpoints), and only the
			// Service a slice claims tells them from the EndpointSlice
			// controller's (rules.ControllerWrittenSlice), never its
			// managed-by label, which anyone may write.
			&discoveryv1.EndpointSlice{}: {Transform: slim.EndpointSlice},
			// The runtime view reads each pod's entry and the scan times;
			// the agents' discovery listings and health stay in the API.
			&v1alpha1.NodeBindReport{}: {Transform: slim.NodeBindReport},
		},
	}
}
