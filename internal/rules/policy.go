// Package rules holds loopguard's exposure rules: pure functions from objects
// and compiled policies to findings with field paths. The admission webhook,
// the controller's audit and the CLI all call these functions and nothing
// else decides whether a port is exposed.
package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Policy kinds as they appear in messages.
const (
	KindLoopbackService        = "LoopbackService"
	KindClusterLoopbackService = "ClusterLoopbackService"
)

// PolicyRef names a policy.
type PolicyRef struct {
	Kind      string
	Namespace string
	Name      string
}

// String renders "LoopbackService shop/envoy-admin" or
// "ClusterLoopbackService platform-admin".
func (r PolicyRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// PortRange is a protected range From..To (inclusive) of one protocol.
type PortRange struct {
	Protocol corev1.Protocol
	From, To int32
	// Name is the IANA name the policy gives the port, if any.
	Name string
}

// Contains reports whether port/protocol falls in the range.
func (r PortRange) Contains(protocol corev1.Protocol, port int32) bool {
	return r.Protocol == protocol && port >= r.From && port <= r.To
}

// String renders "15000/TCP" or "15000-15010/TCP".
func (r PortRange) String() string {
	if r.From == r.To {
		return fmt.Sprintf("%d/%s", r.From, r.Protocol)
	}
	return fmt.Sprintf("%d-%d/%s", r.From, r.To, r.Protocol)
}

// Policy is a LoopbackService or ClusterLoopbackService compiled for fast
// evaluation: selectors parsed once, protocols defaulted.
type Policy struct {
	Ref        PolicyRef
	UID        types.UID
	Generation int64

	// Selector selects the protected pods.
	Selector labels.Selector
	// NamespaceSelector selects the namespaces of a cluster policy; nil for
	// a namespaced one.
	NamespaceSelector labels.Selector

	Ports       []PortRange
	Action      v1alpha1.EnforcementAction
	HostNetwork v1alpha1.HostNetworkAction

	// PortForward is what to do with port-forwards to selected pods, and
	// PortForwardAllowed who may still do it under Deny.
	PortForward        v1alpha1.PortForwardAction
	PortForwardAllowed []v1alpha1.Subject
	// Exec (exec and attach) and Debug (ephemeral containers) are what to
	// do with the other ways into selected pods.
	Exec, Debug AccessRule

	// implied lists the requirements a Service selector must carry so that
	// every pod it selects is selected by Selector; nil when Selector has a
	// requirement that no Service selector can imply (NotIn, DoesNotExist).
	implied   []labels.Requirement
	impliable bool
}

// Compile compiles a LoopbackService.
func Compile(lbs *v1alpha1.LoopbackService) (*Policy, error) {
	p, err := compileSpec(&lbs.Spec)
	if err != nil {
		return nil, fmt.Errorf("LoopbackService %s/%s: %w", lbs.Namespace, lbs.Name, err)
	}
	p.Ref = PolicyRef{Kind: KindLoopbackService, Namespace: lbs.Namespace, Name: lbs.Name}
	p.UID, p.Generation = lbs.UID, lbs.Generation
	return p, nil
}

// CompileCluster compiles a ClusterLoopbackService.
func CompileCluster(clbs *v1alpha1.ClusterLoopbackService) (*Policy, error) {
	p, err := compileSpec(&clbs.Spec.LoopbackServiceSpec)
	if err != nil {
		return nil, fmt.Errorf("ClusterLoopbackService %s: %w", clbs.Name, err)
	}
	nsSel, err := metav1.LabelSelectorAsSelector(&clbs.Spec.NamespaceSelector)
	if err != nil {
		return nil, fmt.Errorf("ClusterLoopbackService %s: spec.namespaceSelector: %w", clbs.Name, err)
	}
	p.NamespaceSelector = nsSel
	p.Ref = PolicyRef{Kind: KindClusterLoopbackService, Name: clbs.Name}
	p.UID, p.Generation = clbs.UID, clbs.Generation
	return p, nil
}

func compileSpec(spec *v1alpha1.LoopbackServiceSpec) (*Policy, error) {
	sel, err := metav1.LabelSelectorAsSelector(&spec.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("spec.podSelector: %w", err)
	}
	p := &Policy{
		Selector:    sel,
		Action:      spec.EnforcementAction,
		HostNetwork: spec.HostNetwork,
	}
	// Objects read from a cache or file may predate defaulting.
	if p.Action == "" {
		p.Action = v1alpha1.ActionDeny
	}
	if p.HostNetwork == "" {
		p.HostNetwork = v1alpha1.HostNetworkDeny
	}
	p.PortForward = v1alpha1.PortForwardDeny
	if pf := spec.PortForward; pf != nil {
		if pf.Action != "" {
			p.PortForward = pf.Action
		}
		p.PortForwardAllowed = pf.Allowed
	}
	p.Exec, p.Debug = compileAccess(spec.Exec), compileAccess(spec.Debug)
	for i, port := range spec.Ports {
		r := PortRange{Protocol: defaultProtocol(port.Protocol), From: port.Port, To: port.Port, Name: port.Name}
		if port.EndPort != nil {
			r.To = *port.EndPort
		}
		if r.From < 1 || r.To > 65535 || r.To < r.From {
			return nil, fmt.Errorf("spec.ports[%d]: invalid range %d-%d", i, r.From, r.To)
		}
		p.Ports = append(p.Ports, r)
	}
	p.implied, p.impliable = impliedRequirements(sel)
	return p, nil
}

// impliedRequirements returns the requirements of sel when each can be
// proven from a Service's equality-based selector alone.
func impliedRequirements(sel labels.Selector) ([]labels.Requirement, bool) {
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		switch r.Operator() {
		case selection.In, selection.Equals, selection.DoubleEquals, selection.Exists:
		default:
			return nil, false
		}
	}
	return reqs, true
}

// AppliesToNamespace reports whether the policy applies to objects in the
// namespace with the given labels.
func (p *Policy) AppliesToNamespace(namespace string, nsLabels labels.Labels) bool {
	if p.NamespaceSelector == nil {
		return p.Ref.Namespace == namespace
	}
	if nsLabels == nil {
		nsLabels = labels.Set{}
	}
	return p.NamespaceSelector.Matches(nsLabels)
}

// Protects reports whether port/protocol is protected, and by which range.
func (p *Policy) Protects(protocol corev1.Protocol, port int32) (PortRange, bool) {
	for _, r := range p.Ports {
		if r.Contains(protocol, port) {
			return r, true
		}
	}
	return PortRange{}, false
}

// protectsName reports whether the policy gives a port of this protocol
// this name.
func (p *Policy) protectsName(name string, protocol corev1.Protocol) (PortRange, bool) {
	for _, r := range p.Ports {
		if r.Name != "" && r.Name == name && r.Protocol == protocol {
			return r, true
		}
	}
	return PortRange{}, false
}

// SelectsOnlyProtected reports whether every pod a Service with this
// equality-based selector can select is a pod the policy protects: each
// requirement of the policy's podSelector is implied by the Service
// selector. An empty Service selector selects nothing (Kubernetes treats it
// as "no selector"), so it implies nothing.
func (p *Policy) SelectsOnlyProtected(serviceSelector map[string]string) bool {
	if !p.impliable || len(serviceSelector) == 0 {
		return false
	}
	for _, r := range p.implied {
		v, ok := serviceSelector[r.Key()]
		if !ok {
			return false
		}
		if r.Operator() != selection.Exists && !r.Values().Has(v) {
			return false
		}
	}
	return true
}

func defaultProtocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
