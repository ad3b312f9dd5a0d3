package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/netpol"
	"github.com/loopguard/loopguard/internal/rules"
)

// managedNetworkPolicyName is the predictable name of the NetworkPolicy a
// policy owns: loopguard-<name> for a LoopbackService and
// loopguard-cluster-<name> for a ClusterLoopbackService.
func managedNetworkPolicyName(clusterScoped bool, policyName string) string {
	ref := rules.PolicyRef{Kind: rules.KindLoopbackService, Name: policyName}
	if clusterScoped {
		ref.Kind = rules.KindClusterLoopbackService
	}
	return rules.ManagedNetworkPolicyName(ref)
}

// NameTakenError says that a NetworkPolicy of the managed name exists and
// is not controlled by the policy: made by a user, or controlled by
// another object. loopguard never takes it over (it would rewrite someone
// else's object) and reports the namespace instead.
type NameTakenError struct {
	Key types.NamespacedName
	// Controller is the NetworkPolicy's controller, if any; Policy the
	// policy that wants the name (its kind and name). A loopguard policy
	// controlling it recreates it when it is deleted: a LoopbackService
	// named cluster-<x> and ClusterLoopbackService <x> want the same name.
	Controller *metav1.OwnerReference
	Policy     metav1.OwnerReference
}

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("NetworkPolicy %s exists and is not owned by this policy; %s", e.Key, e.advice())
}

// advice says what to do about the taken name.
func (e *NameTakenError) advice() string {
	c := e.Controller
	if c == nil || !strings.HasPrefix(c.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		return "rename or delete it"
	}
	holder := c.Kind + " " + c.Name
	if c.Kind == "LoopbackService" {
		holder = c.Kind + " " + e.Key.Namespace + "/" + c.Name
	}
	if c.Kind == e.Policy.Kind && c.Name == e.Policy.Name {
		return fmt.Sprintf("it is an earlier %s's, deleted since: the garbage collector deletes it, then loopguard writes this one's", holder)
	}
	if e.Policy.Kind == "LoopbackService" && c.Kind == "ClusterLoopbackService" {
		return fmt.Sprintf("it is the managed NetworkPolicy of %s, which recreates it if it is deleted; rename this LoopbackService", holder)
	}
	return fmt.Sprintf("it is the managed NetworkPolicy of %s, which recreates it if it is deleted; rename or delete that %s", holder, c.Kind)
}

// annotationSpecHash records on a managed NetworkPolicy a hash of the spec
// loopguard last wrote, so that a change can be told apart: someone
// edited the object (drift, repaired with a Warning), or what it must keep
// closed changed because an overlapping policy came, went or changed.
const annotationSpecHash = "loopguard.io/spec-hash"

func specHash(spec networkingv1.NetworkPolicySpec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ensureNetworkPolicy creates or updates the managed NetworkPolicy and
// writes only when it differs from what it should be; drifted says the
// object had been changed by someone else since loopguard wrote it. A
// NetworkPolicy of that name that owner does not control (by UID) is never
// adopted: the error is a *NameTakenError. A NetworkPolicy on its way out
// is left to the finalizer controller: no new finalizer can be added to
// it, and its namespace is usually terminating.
//
// desired computes the spec from the cache after the NetworkPolicy was
// read from it: whoever wrote the version read (a concurrent closure,
// closure.go) computed its spec from a cache that held no more than this
// one does now, so a write of this version never loses what that one
// closed.
func ensureNetworkPolicy(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner client.Object, key types.NamespacedName, policyLabel string, desired func() (networkingv1.NetworkPolicySpec, error)) (res controllerutil.OperationResult, drifted bool, err error) {
	np := &networkingv1.NetworkPolicy{}
	np.Name, np.Namespace = key.Name, key.Namespace
	res, err = controllerutil.CreateOrUpdate(ctx, c, np, func() error {
		if np.ResourceVersion != "" && !metav1.IsControlledBy(np, owner) {
			return &NameTakenError{Key: key, Controller: metav1.GetControllerOf(np), Policy: policyRef(owner)}
		}
		if !np.DeletionTimestamp.IsZero() {
			return nil
		}
		spec, err := desired()
		if err != nil {
			return err
		}
		controllerutil.AddFinalizer(np, netpol.FinalizerPodsGone)
		if np.Labels == nil {
			np.Labels = map[string]string{}
		}
		np.Labels[netpol.LabelManagedBy] = netpol.ManagedBy
		np.Labels[netpol.LabelPolicy] = policyLabel
		if np.Annotations == nil {
			np.Annotations = map[string]string{}
		}
		// Stored without the hash loopguard writes with every version: an
		// edit that removed it is drift as much as one that kept it.
		if last, ok := np.Annotations[annotationSpecHash]; np.ResourceVersion != "" && (!ok || last != specHash(np.Spec)) {
			drifted = true
		}
		if !equality.Semantic.DeepEqual(np.Spec, spec) {
			np.Spec = spec
		}
		np.Annotations[annotationSpecHash] = specHash(spec)
		return controllerutil.SetControllerReference(owner, np, scheme)
	})
	if err != nil {
		return res, false, fmt.Errorf("failed to apply NetworkPolicy %s: %w", key, err)
	}
	return res, drifted, nil
}

// removeNetworkPolicy deletes the managed NetworkPolicy if loopguard owns
// it; a NetworkPolicy of the same name that a user made is left alone.
func removeNetworkPolicy(ctx context.Context, c client.Client, owner client.Object, key types.NamespacedName) (bool, error) {
	np := &networkingv1.NetworkPolicy{}
	if err := c.Get(ctx, key, np); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("failed to get NetworkPolicy %s: %w", key, err)
	}
	if !metav1.IsControlledBy(np, owner) {
		return false, nil
	}
	if err := c.Delete(ctx, np); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("failed to delete NetworkPolicy %s: %w", key, err)
	}
	return true, nil
}

// policyRef is the kind and name of a policy object, for messages.
func policyRef(o client.Object) metav1.OwnerReference {
	ref := metav1.OwnerReference{Name: o.GetName()}
	switch o.(type) {
	case *v1alpha1.LoopbackService:
		ref.Kind = "LoopbackService"
	case *v1alpha1.ClusterLoopbackService:
		ref.Kind = "ClusterLoopbackService"
	}
	return ref
}
