package controllers

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Exemplars name a kind to clusterindex.Objects, which finds the kind's
// informer by them and never writes them: made once, not for every read
// (a node's reconcile reads thirty namespaces' policies). The list
// constructors are for readers that are not an informer cache.
var (
	lbsExemplar  client.Object = &v1alpha1.LoopbackService{}
	clbsExemplar client.Object = &v1alpha1.ClusterLoopbackService{}
	npExemplar   client.Object = &networkingv1.NetworkPolicy{}
	nsExemplar   client.Object = &corev1.Namespace{}
)

func newNamespace() client.Object { return &corev1.Namespace{} }

func newLBSList() client.ObjectList           { return &v1alpha1.LoopbackServiceList{} }
func newCLBSList() client.ObjectList          { return &v1alpha1.ClusterLoopbackServiceList{} }
func newNetworkPolicyList() client.ObjectList { return &networkingv1.NetworkPolicyList{} }
