package cli

// This file duplicates, for policies read from files, the checks the CRD's
// OpenAPI schema and CEL rules make in the API server (config/crd/bases,
// generated from the markers in api/v1alpha1): what `kubectl apply` would
// refuse must fail `loopguard check` too, with the same field paths. Keep it
// in step with api/v1alpha1/common_types.go and clusterloopbackservice_types.go.

import (
	"fmt"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// Limits of the schema.
const (
	minPolicyPorts   = 1
	maxPolicyPorts   = 64
	maxAllowed       = 32
	maxPortNameLen   = 15
	minPort, maxPort = 1, 65535
)

var portNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

var (
	validActions      = []string{string(v1alpha1.ActionDeny), string(v1alpha1.ActionWarn), string(v1alpha1.ActionAudit)}
	validHostNetwork  = []string{string(v1alpha1.HostNetworkDeny), string(v1alpha1.HostNetworkAudit)}
	validNetpolModes  = []string{string(v1alpha1.NetworkPolicyManaged), string(v1alpha1.NetworkPolicyDisabled)}
	validProtocols    = []string{string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP)}
	validSelectorOps  = []string{"In", "NotIn", "Exists", "DoesNotExist"}
	validPortForward  = []string{string(v1alpha1.PortForwardDeny), string(v1alpha1.PortForwardAudit), string(v1alpha1.PortForwardAllow)}
	validSubjectKinds = []string{string(v1alpha1.SubjectUser), string(v1alpha1.SubjectGroup), string(v1alpha1.SubjectServiceAccount)}
	specPath          = field.NewPath("spec")
	podSelectorPath   = specPath.Child("podSelector")
	nsSelectorPath    = specPath.Child("namespaceSelector")
	portsPath         = specPath.Child("ports")
	metadataNamePath  = field.NewPath("metadata", "name")
	errPortOutOfRange = fmt.Sprintf("must be between %d and %d", minPort, maxPort)
)

// validatePolicy checks a policy as the CRD schema would. raw is the
// object as written (to tell a missing field from an empty one); spec is
// the decoded spec; cluster is true for a ClusterLoopbackService.
func validatePolicy(raw map[string]any, spec *v1alpha1.LoopbackServiceSpec, nsSelectorGiven bool, cluster bool) field.ErrorList {
	var errs field.ErrorList
	md, _ := raw["metadata"].(map[string]any)
	if name, _ := md["name"].(string); name == "" {
		errs = append(errs, field.Required(metadataNamePath, "a policy needs a name"))
	}
	rawSpec, ok := raw["spec"].(map[string]any)
	if !ok {
		return append(errs, field.Required(specPath, ""))
	}
	if cluster && !nsSelectorGiven {
		errs = append(errs, field.Required(nsSelectorPath, "({} selects every namespace)"))
	}
	if rawSpec["podSelector"] == nil {
		errs = append(errs, field.Required(podSelectorPath, "({} selects every pod of the namespace)"))
	} else {
		errs = append(errs, validateSelectorShape(rawSpec["podSelector"], podSelectorPath)...)
	}
	if cluster && nsSelectorGiven {
		errs = append(errs, validateSelectorShape(rawSpec["namespaceSelector"], nsSelectorPath)...)
	}

	rawPorts, _ := rawSpec["ports"].([]any)
	switch {
	case rawSpec["ports"] == nil:
		errs = append(errs, field.Required(portsPath, "at least one port"))
	case len(spec.Ports) < minPolicyPorts:
		errs = append(errs, field.Invalid(portsPath, len(spec.Ports), fmt.Sprintf("should have at least %d items", minPolicyPorts)))
	case len(spec.Ports) > maxPolicyPorts:
		errs = append(errs, field.TooMany(portsPath, len(spec.Ports), maxPolicyPorts))
	}
	type key struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[key]int{}
	for i, p := range spec.Ports {
		path := portsPath.Index(i)
		var rawPort map[string]any
		if i < len(rawPorts) {
			rawPort, _ = rawPorts[i].(map[string]any)
		}
		if rawPort != nil && rawPort["port"] == nil {
			errs = append(errs, field.Required(path.Child("port"), ""))
		} else if p.Port < minPort || p.Port > maxPort {
			errs = append(errs, field.Invalid(path.Child("port"), p.Port, errPortOutOfRange))
		}
		if p.EndPort != nil {
			switch {
			case *p.EndPort < minPort || *p.EndPort > maxPort:
				errs = append(errs, field.Invalid(path.Child("endPort"), *p.EndPort, errPortOutOfRange))
			case *p.EndPort < p.Port:
				errs = append(errs, field.Invalid(path.Child("endPort"), *p.EndPort,
					fmt.Sprintf("endPort must be greater than or equal to port (%d)", p.Port)))
			}
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // the schema's default, applied before validation
		}
		if !oneOf(string(proto), validProtocols) {
			errs = append(errs, field.NotSupported(path.Child("protocol"), p.Protocol, validProtocols))
		}
		if p.Name != "" {
			if len(p.Name) > maxPortNameLen {
				errs = append(errs, field.TooLong(path.Child("name"), p.Name, maxPortNameLen))
			} else if !portNamePattern.MatchString(p.Name) {
				errs = append(errs, field.Invalid(path.Child("name"), p.Name,
					"must be an IANA service name: lowercase letters, digits and '-', starting and ending with a letter or digit"))
			}
		}
		k := key{p.Port, proto}
		if j, dup := seen[k]; dup {
			errs = append(errs, field.Invalid(path, fmt.Sprintf("%d/%s", p.Port, proto),
				fmt.Sprintf("duplicate of spec.ports[%d]: ports must be unique by port and protocol", j)))
		} else {
			seen[k] = i
		}
	}
	if a := string(spec.EnforcementAction); a != "" && !oneOf(a, validActions) {
		errs = append(errs, field.NotSupported(specPath.Child("enforcementAction"), a, validActions))
	}
	if h := string(spec.HostNetwork); h != "" && !oneOf(h, validHostNetwork) {
		errs = append(errs, field.NotSupported(specPath.Child("hostNetwork"), h, validHostNetwork))
	}
	if n := string(spec.NetworkPolicy); n != "" && !oneOf(n, validNetpolModes) {
		errs = append(errs, field.NotSupported(specPath.Child("networkPolicy"), n, validNetpolModes))
	}
	if pf := spec.PortForward; pf != nil {
		errs = append(errs, validatePortForward(pf, rawSpec["portForward"])...)
	}
	return errs
}

// validatePortForward checks spec.portForward: the action, and the allowed
// subjects (at most 32; a kind and a name each; a namespace exactly for
// ServiceAccounts, as the schema's CEL rule says).
func validatePortForward(pf *v1alpha1.PortForwardSpec, raw any) field.ErrorList {
	path := specPath.Child("portForward")
	var errs field.ErrorList
	if a := string(pf.Action); a != "" && !oneOf(a, validPortForward) {
		errs = append(errs, field.NotSupported(path.Child("action"), a, validPortForward))
	}
	if len(pf.Allowed) > maxAllowed {
		errs = append(errs, field.TooMany(path.Child("allowed"), len(pf.Allowed), maxAllowed))
	}
	rawPF, _ := raw.(map[string]any)
	rawAllowed, _ := rawPF["allowed"].([]any)
	for i, s := range pf.Allowed {
		p := path.Child("allowed").Index(i)
		var rawSubject map[string]any
		if i < len(rawAllowed) {
			rawSubject, _ = rawAllowed[i].(map[string]any)
		}
		switch {
		case s.Kind == "":
			errs = append(errs, field.Required(p.Child("kind"), ""))
		case !oneOf(string(s.Kind), validSubjectKinds):
			errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, validSubjectKinds))
		}
		if s.Name == "" {
			if rawSubject != nil && rawSubject["name"] != nil {
				errs = append(errs, field.Invalid(p.Child("name"), s.Name, "should be at least 1 chars long"))
			} else {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
		}
		_, hasNamespace := rawSubject["namespace"]
		if s.Kind == v1alpha1.SubjectServiceAccount && s.Namespace == "" {
			errs = append(errs, field.Required(p.Child("namespace"), "namespace is required for a ServiceAccount"))
		} else if s.Kind != v1alpha1.SubjectServiceAccount && s.Kind != "" && hasNamespace {
			errs = append(errs, field.Invalid(p.Child("namespace"), s.Namespace, "namespace is not allowed for a "+string(s.Kind)))
		}
	}
	return errs
}

// validateSelectorShape checks what the schema checks of a label selector:
// every matchExpressions entry has a key and a known operator. Values are
// left to metav1.LabelSelectorAsSelector (rules.Compile), as in the cluster.
func validateSelectorShape(raw any, path *field.Path) field.ErrorList {
	sel, ok := raw.(map[string]any)
	if !ok {
		return nil // a type error, reported by the decoder
	}
	exprs, _ := sel["matchExpressions"].([]any)
	var errs field.ErrorList
	for i, e := range exprs {
		expr, _ := e.(map[string]any)
		p := path.Child("matchExpressions").Index(i)
		if k, _ := expr["key"].(string); k == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		}
		op, _ := expr["operator"].(string)
		if op == "" {
			errs = append(errs, field.Required(p.Child("operator"), ""))
		} else if !oneOf(op, validSelectorOps) {
			errs = append(errs, field.NotSupported(p.Child("operator"), op, validSelectorOps))
		}
	}
	return errs
}

func oneOf(v string, valid []string) bool {
	for _, s := range valid {
		if v == s {
			return true
		}
	}
	return false
}
