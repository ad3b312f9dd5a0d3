package rules

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// PodTemplate is a pod, or the pod template of a workload, under review.
type PodTemplate struct {
	// Object is the object that carries the template (the Pod itself, or
	// the Deployment, CronJob, ...).
	Object ObjectRef
	Labels map[string]string
	Spec   *corev1.PodSpec
	// SpecPath is the path of Spec in Object: "spec" for a Pod,
	// "spec.template.spec" for a Deployment.
	SpecPath *field.Path
}

// containerKind names the kinds of container in messages.
func containerKind(group string, c *corev1.Container) string {
	switch group {
	case "initContainers":
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return "sidecar container"
		}
		return "init container"
	case "ephemeralContainers":
		return "ephemeral container"
	}
	return "container"
}

// eachContainer calls fn for every container of the spec, in every group.
func eachContainer(spec *corev1.PodSpec, specPath *field.Path, fn func(kind string, c *corev1.Container, path *field.Path)) {
	for i := range spec.Containers {
		c := &spec.Containers[i]
		fn(containerKind("containers", c), c, specPath.Child("containers").Index(i))
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		fn(containerKind("initContainers", c), c, specPath.Child("initContainers").Index(i))
	}
	for i := range spec.EphemeralContainers {
		c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
		fn(containerKind("ephemeralContainers", c), c, specPath.Child("ephemeralContainers").Index(i))
	}
}

// maxSelectedScan bounds the policies selecting a pod that EvaluatePod
// checks one by one for each port.
const maxSelectedScan = 32

// EvaluatePod finds every way the pod (template) itself exposes a port
// protected by a policy of env that selects it: a declared containerPort in
// any container, a hostPort, and hostNetwork.
func EvaluatePod(env *Env, pod PodTemplate) []Finding {
	return evaluatePod(env, pod, nil)
}

// evaluatePod is EvaluatePod within a budget.
func evaluatePod(env *Env, pod PodTemplate, b *budget) []Finding {
	if env.Empty() || pod.Spec == nil {
		return nil
	}
	podLabels := labels.Set(pod.Labels)
	// The policies that select the pod, found through the selector index,
	// are usually few; then each port is checked against them alone, so
	// the cost does not grow with the policies that protect the same port
	// for other pods. Many selecting policies: the port index instead.
	selected := env.MatchingPolicies(podLabels)
	if len(selected) == 0 {
		return nil
	}
	protecting := func(proto corev1.Protocol, port int32, fn func(*Policy, PortRange)) {
		if len(selected) > maxSelectedScan {
			env.covering(proto, port, func(p *Policy, r PortRange) {
				if p.Selector.Matches(podLabels) {
					fn(p, r)
				}
			})
			return
		}
		for _, p := range selected {
			if r, ok := p.Protects(proto, port); ok {
				fn(p, r)
			}
		}
	}
	var c collector
	eachContainer(pod.Spec, pod.SpecPath, func(kind string, ctr *corev1.Container, path *field.Path) {
		for j, cp := range ctr.Ports {
			if !b.spend(1 + min(len(selected), maxSelectedScan)) {
				return
			}
			proto := defaultProtocol(cp.Protocol)
			protecting(proto, cp.ContainerPort, func(p *Policy, r PortRange) {
				portPath := path.Child("ports").Index(j)
				f := Finding{
					Object: pod.Object, Container: ctr.Name, Port: cp.ContainerPort, Protocol: proto,
					Field:  portPath.Child("containerPort").String(),
					Reason: ReasonContainerPort,
				}
				role := kind
				if kind == "sidecar container" {
					role = "sidecar"
				}
				f.format = fmt.Sprintf("%s %q: port %d/%s at %s is declared loopback-only by \x00policies\x00; remove the containerPort (the %s must bind 127.0.0.1)",
					kind, ctr.Name, cp.ContainerPort, proto, f.Field, role)
				if cp.HostPort != 0 {
					f.Reason = ReasonHostPort
					f.format = fmt.Sprintf("%s %q: port %d/%s at %s, published on the node by hostPort %d at %s, is declared loopback-only by \x00policies\x00; remove the containerPort and its hostPort (the %s must bind 127.0.0.1)",
						kind, ctr.Name, cp.ContainerPort, proto, f.Field, cp.HostPort, portPath.Child("hostPort"), role)
				}
				c.add(f, p, p.Action)
			})
		}
	})
	if pod.Spec.HostNetwork {
		evaluateHostNetwork(env, pod, podLabels, &c)
	}
	return c.findings
}

// evaluateHostNetwork reports a selected hostNetwork pod: its loopback is
// the node's, so every protected port it serves is shared with every other
// hostNetwork pod and node process, and NetworkPolicy does not apply.
func evaluateHostNetwork(env *Env, pod PodTemplate, podLabels labels.Set, c *collector) {
	path := pod.SpecPath.Child("hostNetwork").String()
	env.selecting(podLabels, func(p *Policy) {
		ports := make([]string, len(p.Ports))
		for i, r := range p.Ports {
			ports[i] = r.String()
		}
		f := Finding{
			Object: pod.Object, Field: path, Reason: ReasonHostNetwork,
			format: fmt.Sprintf("uses the node's network (hostNetwork: true at %s), so its loopback-only ports %s, declared by \x00policies\x00, live on the node's loopback, shared with every hostNetwork pod and node process, and no NetworkPolicy applies; "+hostNetworkHintMark,
				path, strings.Join(ports, ", ")),
		}
		action := p.Action
		if p.HostNetwork == v1alpha1.HostNetworkAudit {
			action = v1alpha1.ActionAudit
		}
		c.add(f, p, action)
	})
}
