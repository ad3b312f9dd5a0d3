package rules

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loopguard/loopguard/internal/podview"
)

// ProxyTarget is the name of a pods/proxy or services/proxy request:
// "name", "name:port" or "scheme:name:port".
type ProxyTarget struct {
	Scheme, Name, Port string
}

// ParseProxyTarget splits a proxy request's name as the API server does;
// ok is false for a name the API server refuses as a bad request.
func ParseProxyTarget(id string) (t ProxyTarget, ok bool) {
	t.Scheme, t.Name, t.Port, ok = utilnet.SplitSchemeNamePort(id)
	return t, ok
}

// EvaluatePodProxy decides a pods/proxy request (target as
// ParseProxyTarget returns it) to pod. The API server connects to the pod
// IP on the port the request names, or on the pod's first containerPort
// when it names none, or on the scheme's default port; a port that is not
// a number it resolves with its own resolver, so loopguard cannot tell
// which port that is and judges it like a protected one.
func EvaluatePodProxy(env *Env, pod *podview.Pod, t ProxyTarget, who Requester) AccessDecision {
	d := AccessDecision{Access: AccessProxy, Pod: pod.Name, Port: podProxyPort(pod, t)}
	number, err := strconv.ParseUint(d.Port, 10, 16)
	for _, p := range env.MatchingPolicies(labels.Set(pod.Labels)) {
		if err != nil {
			d.add(p, who)
		} else if _, ok := p.Protects(corev1.ProtocolTCP, int32(number)); ok {
			d.add(p, who)
		}
	}
	d.finish()
	return d
}

// podProxyPort is the port a pods/proxy request reaches, as the API
// server's pod ResourceLocation picks it.
func podProxyPort(pod *podview.Pod, t ProxyTarget) string {
	if t.Port != "" {
		return t.Port
	}
	for _, c := range pod.TrimmedSpec.Containers {
		if len(c.Ports) > 0 {
			return strconv.Itoa(int(c.Ports[0].ContainerPort))
		}
	}
	if t.Scheme == "https" {
		return "443"
	}
	return "80"
}

// EvaluateServiceProxy decides a services/proxy request (target as
// ParseProxyTarget returns it) to svc, whose namespace's pods are pods.
// The API server picks the Service port by number or by name (no port: the
// unnamed one) and connects to one of its endpoints, a pod the Service
// selects, on the port the Service targets there; every such pod and port
// is judged, with the same target resolution as the Service exposure rule.
// A Service without a selector routes to hand-written endpoints, which
// the EndpointSlice rule judges when they are written.
func EvaluateServiceProxy(env *Env, svc *corev1.Service, t ProxyTarget, pods []*podview.Pod, who Requester) AccessDecision {
	d := AccessDecision{Access: AccessProxy, Service: svc.Name}
	if env.Empty() || !inScope(svc) {
		return d
	}
	i := serviceProxyPort(svc, t.Port)
	if i < 0 {
		return d // the API server answers 503: no such port
	}
	tgt := effectiveTarget(&svc.Spec.Ports[i], field.NewPath("spec", "ports").Index(i))
	sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
	for _, pod := range pods {
		if pod.Namespace != svc.Namespace || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		selecting := map[*Policy]bool{}
		env.selecting(labels.Set(pod.Labels), func(p *Policy) { selecting[p] = true })
		if len(selecting) == 0 {
			continue
		}
		// The proxy speaks HTTP over TCP whatever the Service port says.
		for _, h := range targetHits(env, tgt, corev1.ProtocolTCP, newPortNames(pod.TrimmedSpec), nil, func(p *Policy) bool { return selecting[p] }) {
			d.add(h.policy, who)
			if d.Pod == "" || pod.Name < d.Pod {
				d.Pod, d.Port = pod.Name, strconv.Itoa(int(h.port))
			}
		}
	}
	d.finish()
	return d
}

// serviceProxyPort is the index of the Service port a services/proxy
// request names, as the API server picks it: a number matches the port's
// number, anything else its name; -1 when none matches.
func serviceProxyPort(svc *corev1.Service, port string) int {
	n, err := strconv.ParseInt(port, 10, 64)
	for i, sp := range svc.Spec.Ports {
		if (err == nil && int64(sp.Port) == n) || (err != nil && sp.Name == port) {
			return i
		}
	}
	return -1
}
