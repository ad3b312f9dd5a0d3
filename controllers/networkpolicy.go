package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

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
// Anyone who can edit the object can compute the hash of what they write,
// so the manager believes it only for what was written before it started:
// after that, specsWritten remembers.
const annotationSpecHash = "loopguard.io/spec-hash"

func specHash(spec networkingv1.NetworkPolicySpec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ensureNetworkPolicy creates or updates the managed NetworkPolicy and
// writes only when it differs from what it should be; drifted says the
// object had been changed by someone else since loopguard wrote it: since
// the spec whose hash is last (this process's last write; "" for none,
// and then the annotation says), and written is the hash of the spec it
// holds now ("" when it is being deleted). A
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
func ensureNetworkPolicy(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner client.Object, key types.NamespacedName, policyLabel, last string, desired func() (networkingv1.NetworkPolicySpec, error)) (res controllerutil.OperationResult, drifted bool, written string, err error) {
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
		if np.ResourceVersion != "" {
			if last == "" {
				last = np.Annotations[annotationSpecHash]
			}
			drifted = last == "" || last != specHash(np.Spec)
		}
		if !equality.Semantic.DeepEqual(np.Spec, spec) {
			np.Spec = spec
		}
		written = specHash(spec)
		np.Annotations[annotationSpecHash] = written
		return controllerutil.SetControllerReference(owner, np, scheme)
	})
	if err != nil {
		return res, false, "", fmt.Errorf("failed to apply NetworkPolicy %s: %w", key, err)
	}
	return res, drifted, written, nil
}

// specsWritten remembers the hash of the spec this process last wrote
// (or found as it should be) in each managed NetworkPolicy, by policy and
// namespace, so that an edit that also forged the spec-hash annotation is
// still drift. A deleted policy's are forgotten with it.
type specsWritten struct {
	mu sync.Mutex
	m  map[rules.PolicyRef]map[string]string
}

func newSpecsWritten() *specsWritten {
	return &specsWritten{m: map[rules.PolicyRef]map[string]string{}}
}

func (w *specsWritten) last(ref rules.PolicyRef, namespace string) string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[ref][namespace]
}

func (w *specsWritten) put(ref rules.PolicyRef, namespace, hash string) {
	if w == nil || hash == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[ref] == nil {
		w.m[ref] = map[string]string{}
	}
	w.m[ref][namespace] = hash
}

func (w *specsWritten) forget(ref rules.PolicyRef) {
	if w == nil {
		return
	}
	w.mu.Lock()
	delete(w.m, ref)
	w.mu.Unlock()
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
