package rules

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
)

// TestAuditOfCorev1AndPodviewPodsAgree: Audit over a snapshot whose pods
// were added as *corev1.Pod (the CLI's files, a list from the API) finds
// what it finds over the same snapshot with the pods added as
// the manager's cache holds them (trimmed by its transform, a
// workload's specs shared): the same objects
// judged, in order, with the same findings, and the same NetworkPolicy
// conflicts. And each pod it judges gets the findings the *corev1.Pod
// itself gets from Evaluate, and the pods judged are those the pods
// themselves make (live, not judged through an owner), as before the
// rules took podview.Pods. Generated namespaces mix pods of every shape
// the rules tell apart: init, sidecar and ephemeral containers, hostPort,
// hostNetwork, finished and terminating pods, dual-stack IPs, replicas of
// a ReplicaSet and pods that only claim one; Services by number and by
// name, hand-written EndpointSlices by IP and NetworkPolicies by number
// and by name.
func TestAuditOfCorev1AndPodviewPodsAgree(t *testing.T) {
	env := shopEnv(
		nsPolicy(t, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000), protects(9901, lpName("admin")),
			hostNetworkAction(v1alpha1.HostNetworkAudit)),
		nsPolicy(t, testNamespace, "debug", podSelectorExpr("tier", metav1.LabelSelectorOpExists), protects(6060, through(6069)), enforce(v1alpha1.ActionWarn)),
		nsPolicy(t, testNamespace, "dns", podSelector("app", "cart"), protects(5353, lpProtocol(corev1.ProtocolUDP))),
	)
	replica := []podOpt{withContainer("envoy", port(15000, portName("envoy")), port(8080, portName("http")))}
	rs := withUID(replicaSet("cart-7f9", append([]podOpt{withLabels("app", "cart")}, replica...)...), "rs-uid")
	// The reasons and conflicts seen over every seed: the generator must
	// reach each.
	seen := map[string]int{}
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 15))
			var pods []*corev1.Pod
			var ips []string
			for i := range 14 {
				name := fmt.Sprintf("pod-%d", i)
				ip := fmt.Sprintf("10.244.0.%d", 10+i)
				opts := []podOpt{withIP(ip)}
				switch r.IntN(3) {
				case 0:
					opts = append(opts, withLabels("app", "cart"))
				case 1:
					opts = append(opts, withLabels("app", "cart", "tier", "front"))
				default:
					opts = append(opts, withLabels("app", "web"))
				}
				if r.IntN(4) == 0 {
					// A replica: the ReplicaSet's template, and its
					// controller reference (sometimes a false one).
					opts = append(opts, replica...)
					uid := "rs-uid"
					if r.IntN(3) == 0 {
						uid = "other-uid"
					}
					opts = append(opts, func(p *corev1.Pod) { ownedBy("apps/v1", "ReplicaSet", "cart-7f9", types.UID(uid))(p) })
				} else {
					var ctr []ctrOpt
					for _, n := range r.Perm(6)[:1+r.IntN(3)] {
						ctr = append(ctr, []ctrOpt{
							port(15000, portName("envoy")), port(8080, portName("http")), port(9901, portName("admin")),
							port(6065, hostPort(16065)), port(5353, portProtocol(corev1.ProtocolUDP)), port(5353, portName("dns-tcp")),
						}[n])
					}
					opts = append(opts, withContainer("app", ctr...))
				}
				switch r.IntN(8) {
				case 0:
					opts = append(opts, withInitContainer("warmup", port(6061)))
				case 1:
					opts = append(opts, withSidecar("proxy", port(15000, portName("proxy-admin"))))
				case 2:
					opts = append(opts, func(p *corev1.Pod) {
						p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
							EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Ports: []corev1.ContainerPort{{ContainerPort: 6062}}}})
					})
				case 3:
					opts = append(opts, withHostNetwork())
				case 4:
					opts = append(opts, terminating())
				case 5:
					opts = append(opts, phase([]corev1.PodPhase{corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending}[r.IntN(3)]))
				case 6:
					v6 := fmt.Sprintf("fd00:10:244::%x", 10+i)
					opts = append(opts, func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: v6}) })
					ips = append(ips, v6)
				}
				p := pod(name, opts...)
				p.Spec.NodeName = fmt.Sprintf("node-%d", i%3)
				pods = append(pods, p)
				ips = append(ips, ip)
			}
			var others []runtime.Object
			others = append(others, rs)
			for i := range 4 {
				sel := [][]string{{"app", "cart"}, {"tier", "front"}, {"app", "web"}, {"app", "cart", "tier", "front"}}[r.IntN(4)]
				sp := []svcOpt{servicePort(80, targetPort(15000)), servicePort(81, targetPortName("admin")),
					servicePort(82, targetPortName("envoy")), servicePort(83, targetPortName("dns-tcp"))}[r.IntN(4)]
				others = append(others, service(fmt.Sprintf("svc-%d", i), selector(sel...), sp))
			}
			var eps []discoveryv1.Endpoint
			for _, n := range r.Perm(len(ips))[:4] {
				eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ips[n]}})
			}
			others = append(others, slice("direct", []discoveryv1.EndpointPort{slicePort(15000, corev1.ProtocolTCP), slicePort(6065, corev1.ProtocolTCP)}, eps...))
			byName := allowAll("by-name")
			byName.Spec.Ingress[0].Ports = []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString([]string{"admin", "envoy", "proxy-admin"}[r.IntN(3)]))}}
			byNumber := allowAll("by-number")
			byNumber.Spec.PodSelector.MatchLabels = kv("app", "cart")
			byNumber.Spec.Ingress[0].Ports = []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(int32([]int{15000, 6065, 8080}[r.IntN(3)])))}}
			others = append(others, byName, byNumber)

			// fromPods: the pods as they are (Add converts each with
			// podview.Of); fromViews: as the manager's cache holds them,
			// trimmed and with a workload's specs shared.
			fromPods := Snapshot{Env: env}
			fromViews := Snapshot{Env: env}
			cached := podview.NewTransform()
			for _, p := range pods {
				v, err := cached(p.DeepCopy())
				if err != nil {
					t.Fatal(err)
				}
				if !fromPods.Add(p) || !fromViews.Add(v.(*podview.Pod)) {
					t.Fatalf("Add(%s) = false", p.Name)
				}
			}
			for _, o := range others {
				if np, ok := o.(*networkingv1.NetworkPolicy); ok {
					fromPods.NetworkPolicies = append(fromPods.NetworkPolicies, np)
					fromViews.NetworkPolicies = append(fromViews.NetworkPolicies, np)
					continue
				}
				if !fromPods.Add(o) || !fromViews.Add(o) {
					t.Fatalf("Add(%T) = false", o)
				}
			}
			got, want := Audit(fromViews), Audit(fromPods)

			if !slices.Equal(judgedNames(got), judgedNames(want)) {
				t.Fatalf("judged\n%q\nwant\n%q", judgedNames(got), judgedNames(want))
			}
			for i := range want.Judged {
				g, w := got.Judged[i], want.Judged[i]
				if objectRef(g.Object) != objectRef(w.Object) || !reflect.DeepEqual(g.Findings, w.Findings) {
					t.Errorf("%v:\n got %v\nwant %v", objectRef(w.Object), findingMessages(g.Findings), findingMessages(w.Findings))
				}
				for _, f := range w.Findings {
					seen[f.Reason]++
				}
			}
			if !reflect.DeepEqual(got.Conflicts, want.Conflicts) {
				t.Errorf("conflicts\n%v\nwant\n%v", got.Conflicts, want.Conflicts)
			}
			seen["conflicts"] += len(want.Conflicts)

			// The pods themselves, as the rules judged them before: the
			// live ones not judged through a real owner, each with
			// Evaluate's findings on the *corev1.Pod.
			owners := NewOwners(fromPods.Workloads)
			var wantPods, gotPods []string
			for _, p := range pods {
				if p.DeletionTimestamp != nil {
					continue
				}
				if OwnedByWorkload(p, owners) {
					seen["owned"]++
					continue
				}
				wantPods = append(wantPods, p.Name)
			}
			for _, j := range want.Judged {
				v, ok := j.Object.(*podview.Pod)
				if !ok {
					continue
				}
				gotPods = append(gotPods, v.Name)
				i := slices.IndexFunc(pods, func(p *corev1.Pod) bool { return p.Name == v.Name })
				if ref := Evaluate(env, pods[i], Cluster{Services: fromPods.Services}); !reflect.DeepEqual(j.Findings, ref) {
					t.Errorf("pod %s: Audit\n%v\nEvaluate on the corev1.Pod\n%v", v.Name, findingMessages(j.Findings), findingMessages(ref))
				}
			}
			if !slices.Equal(gotPods, wantPods) {
				t.Errorf("pods judged %v, want %v", gotPods, wantPods)
			}
			// The EndpointSlices, resolved as before: a pod owns the IPs
			// the old rule gives on its *corev1.Pod.
			ref := oldResolver(env, pods)
			for _, j := range want.Judged {
				if s, ok := j.Object.(*discoveryv1.EndpointSlice); ok {
					if w := Evaluate(env, s, Cluster{Resolver: ref}); !reflect.DeepEqual(j.Findings, w) {
						t.Errorf("slice %s: Audit\n%v\nwith the pods' own IPs\n%v", s.Name, findingMessages(j.Findings), findingMessages(w))
					}
				}
			}
		})
	}
	for _, what := range []string{ReasonContainerPort, ReasonHostPort, ReasonHostNetwork, ReasonServiceTarget, ReasonSelectedByService,
		ReasonEndpointTarget, "conflicts", "owned"} {
		if seen[what] == 0 {
			t.Errorf("no %s over every seed: the generator is too weak (%v)", what, seen)
		}
	}
}

// oldPodIPs is PodIPs as it was on a *corev1.Pod before the rules took
// podview.Pods: none for a hostNetwork pod, one being deleted or one that
// has finished; else status.podIPs, canonical, falling back to
// status.podIP when none of them parses.
func oldPodIPs(p *corev1.Pod) []string {
	if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	var out []string
	for _, ip := range p.Status.PodIPs {
		if a, ok := CanonicalIP(ip.IP); ok {
			out = append(out, a)
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if a, ok := CanonicalIP(p.Status.PodIP); ok {
			out = append(out, a)
		}
	}
	return out
}

// oldPods resolves addresses to pods by oldPodIPs of the *corev1.Pods
// oldResolver is given, with env in env's namespace alone (as
// Cluster.resolver does).
type oldPods struct {
	env   *Env
	byIP  map[string][]*podview.Pod
	byKey map[PodKey]*podview.Pod
}

func oldResolver(env *Env, pods []*corev1.Pod) Resolver {
	r := &oldPods{env: env, byIP: map[string][]*podview.Pod{}, byKey: map[PodKey]*podview.Pod{}}
	for _, p := range pods {
		v := podview.Of(p)
		r.byKey[PodKey{p.Namespace, p.Name}] = v
		for _, ip := range oldPodIPs(p) {
			r.byIP[ip] = append(r.byIP[ip], v)
		}
	}
	return r
}

func (r *oldPods) PodsByIP(ip string) []*podview.Pod       { return r.byIP[ip] }
func (r *oldPods) Pod(namespace, name string) *podview.Pod { return r.byKey[PodKey{namespace, name}] }
func (r *oldPods) EnvFor(namespace string) *Env {
	if namespace == r.env.Namespace {
		return r.env
	}
	return nil
}
