package controllers

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	anpv1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/rules"
)

// adminNetworkPolicyGVK is the AdminNetworkPolicy API loopguard writes:
// v1alpha1 of sigs.k8s.io/network-policy-api, the version network plugins
// implement today (v1alpha2 renames it ClusterNetworkPolicy).
var adminNetworkPolicyGVK = anpv1alpha1.SchemeGroupVersion.WithKind("AdminNetworkPolicy")

// errNoAdminNetworkPolicyAPI: the cluster does not serve AdminNetworkPolicy.
var errNoAdminNetworkPolicyAPI = errors.New("the cluster has no AdminNetworkPolicy API (policy.networking.k8s.io/v1alpha1); install its CRD and a network plugin that implements it")

// adminNetworkPolicyAvailable reports whether the API server serves
// AdminNetworkPolicy; the REST mapper re-reads discovery on a miss, so a
// CRD installed later is found.
func adminNetworkPolicyAvailable(m meta.RESTMapper) (bool, error) {
	_, err := m.RESTMapping(adminNetworkPolicyGVK.GroupKind(), adminNetworkPolicyGVK.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to look up the AdminNetworkPolicy API: %w", err)
	}
	return true, nil
}

// managedAdminNetworkPolicyName is the name of the AdminNetworkPolicy a
// ClusterLoopbackService owns.
func managedAdminNetworkPolicyName(policyName string) string {
	return managedNetworkPolicyName(false, policyName)
}

// desiredAdminNetworkPolicy denies ingress from every pod of every
// namespace to the protected ports of the pods the policy selects. An
// AdminNetworkPolicy is evaluated before namespace NetworkPolicies, so an
// allow-all NetworkPolicy cannot re-open these ports to pods. Its ingress
// peers can only be pods, so traffic from nodes and outside the cluster is
// left to the managed NetworkPolicies, which Admin mode keeps.
func desiredAdminNetworkPolicy(clbs *v1alpha1.ClusterLoopbackService, p *rules.Policy) anpv1alpha1.AdminNetworkPolicySpec {
	ports := make([]anpv1alpha1.AdminNetworkPolicyPort, 0, len(p.Ports))
	for _, r := range p.Ports {
		if r.From == r.To {
			ports = append(ports, anpv1alpha1.AdminNetworkPolicyPort{PortNumber: &anpv1alpha1.Port{Protocol: r.Protocol, Port: r.From}})
			continue
		}
		ports = append(ports, anpv1alpha1.AdminNetworkPolicyPort{PortRange: &anpv1alpha1.PortRange{Protocol: r.Protocol, Start: r.From, End: r.To}})
	}
	priority := ptr.Deref(clbs.Spec.AdminPriority, v1alpha1.DefaultAdminPriority)
	return anpv1alpha1.AdminNetworkPolicySpec{
		Priority: priority,
		Subject: anpv1alpha1.AdminNetworkPolicySubject{Pods: &anpv1alpha1.NamespacedPod{
			NamespaceSelector: *clbs.Spec.NamespaceSelector.DeepCopy(),
			PodSelector:       *clbs.Spec.PodSelector.DeepCopy(),
		}},
		Ingress: []anpv1alpha1.AdminNetworkPolicyIngressRule{{
			Name:   "loopguard-deny-loopback-only-ports",
			Action: anpv1alpha1.AdminNetworkPolicyRuleActionDeny,
			From:   []anpv1alpha1.AdminNetworkPolicyIngressPeer{{Namespaces: &metav1.LabelSelector{}}},
			Ports:  &ports,
		}},
	}
}

// ensureAdminNetworkPolicy creates or repairs the AdminNetworkPolicy of an
// Admin-mode ClusterLoopbackService.
func ensureAdminNetworkPolicy(ctx context.Context, c client.Client, scheme *runtime.Scheme, clbs *v1alpha1.ClusterLoopbackService, p *rules.Policy) (controllerutil.OperationResult, error) {
	anp := &anpv1alpha1.AdminNetworkPolicy{}
	anp.Name = managedAdminNetworkPolicyName(clbs.Name)
	want := desiredAdminNetworkPolicy(clbs, p)
	res, err := controllerutil.CreateOrUpdate(ctx, c, anp, func() error {
		if anp.Labels == nil {
			anp.Labels = map[string]string{}
		}
		anp.Labels[netpol.LabelManagedBy] = netpol.ManagedBy
		anp.Labels[netpol.LabelPolicy] = policyLabelValue(true, clbs.Name)
		if !equality.Semantic.DeepEqual(anp.Spec, want) {
			anp.Spec = want
		}
		return controllerutil.SetControllerReference(clbs, anp, scheme)
	})
	if err != nil {
		return res, fmt.Errorf("failed to apply AdminNetworkPolicy %s: %w", anp.Name, err)
	}
	return res, nil
}

// removeAdminNetworkPolicy deletes the AdminNetworkPolicy the policy owns,
// if any; one of the same name that someone else made is left alone.
func removeAdminNetworkPolicy(ctx context.Context, c client.Client, clbs *v1alpha1.ClusterLoopbackService) (bool, error) {
	anp := &anpv1alpha1.AdminNetworkPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Name: managedAdminNetworkPolicyName(clbs.Name)}, anp); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return false, nil
		}
		return false, fmt.Errorf("failed to get AdminNetworkPolicy %s: %w", anp.Name, err)
	}
	if !metav1.IsControlledBy(anp, clbs) {
		return false, nil
	}
	if err := c.Delete(ctx, anp); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("failed to delete AdminNetworkPolicy %s: %w", anp.Name, err)
	}
	return true, nil
}
