package netpol

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

const maxPort = 65535

var (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

// span is a NetworkPolicyPort in comparable form; all is a nil Port (every
// port of the protocol).
type span struct {
	Proto    corev1.Protocol
	From, To int32
	All      bool
}

func (s span) String() string {
	if s.All {
		return "all/" + string(s.Proto)
	}
	return fmt.Sprintf("%d-%d/%s", s.From, s.To, s.Proto)
}

func all(p corev1.Protocol) span             { return span{Proto: p, All: true} }
func rng(p corev1.Protocol, f, t int32) span { return span{Proto: p, From: f, To: t} }
func pr(p corev1.Protocol, f, t int32) rules.PortRange {
	return rules.PortRange{Protocol: p, From: f, To: t}
}

// spans converts AllowedPorts' output, checking on the way that every entry
// is one a NetworkPolicy accepts: a protocol, a numeric port in 1..65535, an
// endPort only when it is strictly greater than port and at most 65535.
func spans(t *testing.T, ports []networkingv1.NetworkPolicyPort) []span {
	t.Helper()
	var out []span
	for i, pp := range ports {
		if pp.Protocol == nil {
			t.Fatalf("ports[%d]: nil protocol", i)
		}
		if pp.Port == nil {
			if pp.EndPort != nil {
				t.Fatalf("ports[%d]: endPort %d without port", i, *pp.EndPort)
			}
			out = append(out, all(*pp.Protocol))
			continue
		}
		if pp.Port.Type != intstr.Int {
			t.Fatalf("ports[%d]: named port %q", i, pp.Port.StrVal)
		}
		from := pp.Port.IntVal
		if from < 1 || from > maxPort {
			t.Fatalf("ports[%d]: port %d outside 1..65535", i, from)
		}
		to := from
		if pp.EndPort != nil {
			if *pp.EndPort <= from {
				t.Fatalf("ports[%d]: endPort %d <= port %d (an endPort equal to port must be omitted)", i, *pp.EndPort, from)
			}
			if *pp.EndPort > maxPort {
				t.Fatalf("ports[%d]: endPort %d > 65535", i, *pp.EndPort)
			}
			to = *pp.EndPort
		}
		out = append(out, rng(*pp.Protocol, from, to))
	}
	return out
}

func TestAllowedPorts(t *testing.T) {
	cases := []struct {
		name      string
		protected []rules.PortRange
		want      []span
	}{
		{
			name: "nothing protected: every port of every protocol",
			want: []span{all(tcp), all(udp), all(sctp)},
		},
		{
			name:      "single port",
			protected: []rules.PortRange{pr(tcp, 15000, 15000)},
			want:      []span{rng(tcp, 1, 14999), rng(tcp, 15001, 65535), all(udp), all(sctp)},
		},
		{
			name:      "range",
			protected: []rules.PortRange{pr(tcp, 6060, 6069)},
			want:      []span{rng(tcp, 1, 6059), rng(tcp, 6070, 65535), all(udp), all(sctp)},
		},
		{
			name:      "adjacent ranges merge",
			protected: []rules.PortRange{pr(tcp, 100, 199), pr(tcp, 200, 299)},
			want:      []span{rng(tcp, 1, 99), rng(tcp, 300, 65535), all(udp), all(sctp)},
		},
		{
			name:      "overlapping ranges",
			protected: []rules.PortRange{pr(tcp, 100, 250), pr(tcp, 200, 299)},
			want:      []span{rng(tcp, 1, 99), rng(tcp, 300, 65535), all(udp), all(sctp)},
		},
		{
			name:      "nested ranges",
			protected: []rules.PortRange{pr(tcp, 100, 500), pr(tcp, 200, 299), pr(tcp, 300, 300)},
			want:      []span{rng(tcp, 1, 99), rng(tcp, 501, 65535), all(udp), all(sctp)},
		},
		{
			name:      "duplicate ranges",
			protected: []rules.PortRange{pr(tcp, 15000, 15000), pr(tcp, 15000, 15000)},
			want:      []span{rng(tcp, 1, 14999), rng(tcp, 15001, 65535), all(udp), all(sctp)},
		},
		{
			name:      "gap of one port between ranges: endPort omitted",
			protected: []rules.PortRange{pr(tcp, 100, 199), pr(tcp, 201, 299)},
			want:      []span{rng(tcp, 1, 99), rng(tcp, 200, 200), rng(tcp, 300, 65535), all(udp), all(sctp)},
		},
		{
			name:      "port 1",
			protected: []rules.PortRange{pr(tcp, 1, 1)},
			want:      []span{rng(tcp, 2, 65535), all(udp), all(sctp)},
		},
		{
			name:      "port 2 leaves port 1 alone",
			protected: []rules.PortRange{pr(tcp, 2, 2)},
			want:      []span{rng(tcp, 1, 1), rng(tcp, 3, 65535), all(udp), all(sctp)},
		},
		{
			name:      "port 65535",
			protected: []rules.PortRange{pr(tcp, 65535, 65535)},
			want:      []span{rng(tcp, 1, 65534), all(udp), all(sctp)},
		},
		{
			name:      "port 65534 leaves 65535 alone",
			protected: []rules.PortRange{pr(tcp, 65534, 65534)},
			want:      []span{rng(tcp, 1, 65533), rng(tcp, 65535, 65535), all(udp), all(sctp)},
		},
		{
			name:      "ports 1 and 65535",
			protected: []rules.PortRange{pr(tcp, 65535, 65535), pr(tcp, 1, 1)},
			want:      []span{rng(tcp, 2, 65534), all(udp), all(sctp)},
		},
		{
			name:      "whole TCP range: no TCP entry, the others stay open",
			protected: []rules.PortRange{pr(tcp, 1, 65535)},
			want:      []span{all(udp), all(sctp)},
		},
		{
			name:      "whole range in two halves",
			protected: []rules.PortRange{pr(udp, 30000, 65535), pr(udp, 1, 29999)},
			want:      []span{all(tcp), all(sctp)},
		},
		{
			name:      "everything but port 1",
			protected: []rules.PortRange{pr(sctp, 2, 65535)},
			want:      []span{all(tcp), all(udp), rng(sctp, 1, 1)},
		},
		{
			name: "several protocols at once",
			protected: []rules.PortRange{
				pr(udp, 5353, 5353), pr(tcp, 15000, 15000), pr(sctp, 3868, 3870), pr(tcp, 6060, 6069),
			},
			want: []span{
				rng(tcp, 1, 6059), rng(tcp, 6070, 14999), rng(tcp, 15001, 65535),
				rng(udp, 1, 5352), rng(udp, 5354, 65535),
				rng(sctp, 1, 3867), rng(sctp, 3871, 65535),
			},
		},
		{
			name: "unsorted input",
			protected: []rules.PortRange{
				pr(tcp, 9000, 9000), pr(tcp, 80, 81), pr(tcp, 15000, 15010), pr(tcp, 443, 443), pr(tcp, 82, 82),
			},
			want: []span{
				rng(tcp, 1, 79), rng(tcp, 83, 442), rng(tcp, 444, 8999), rng(tcp, 9001, 14999), rng(tcp, 15011, 65535),
				all(udp), all(sctp),
			},
		},
		{
			name:      "a range starting inside the previous one and ending before its end",
			protected: []rules.PortRange{pr(tcp, 10, 1000), pr(tcp, 20, 30), pr(tcp, 999, 1001)},
			want:      []span{rng(tcp, 1, 9), rng(tcp, 1002, 65535), all(udp), all(sctp)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			in := append([]rules.PortRange(nil), tc.protected...)
			got := spans(t, AllowedPorts(tc.protected))
			g.Expect(got).To(Equal(tc.want))
			g.Expect(tc.protected).To(Equal(in), "AllowedPorts must not modify its input")
		})
	}
}

// cniAdmits evaluates a NetworkPolicy spec the way a CNI does for one port of
// the selected pods (sources aside): a rule with no ports admits every
// port; a port with a nil port admits every port of its protocol (TCP when
// unset).
func cniAdmits(spec networkingv1.NetworkPolicySpec, proto corev1.Protocol, port int32) bool {
	for _, rule := range spec.Ingress {
		if len(rule.Ports) == 0 {
			return true
		}
		for _, pp := range rule.Ports {
			p := tcp
			if pp.Protocol != nil {
				p = *pp.Protocol
			}
			if p != proto {
				continue
			}
			if pp.Port == nil {
				return true
			}
			to := pp.Port.IntVal
			if pp.EndPort != nil {
				to = *pp.EndPort
			}
			if port >= pp.Port.IntVal && port <= to {
				return true
			}
		}
	}
	return false
}

func TestDesired(t *testing.T) {
	g := NewWithT(t)
	sel := metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}
	protected := []rules.PortRange{pr(tcp, 15000, 15000), pr(udp, 5353, 5353)}
	spec := Desired(sel, protected)
	g.Expect(spec.PodSelector).To(Equal(sel))
	g.Expect(spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
	g.Expect(spec.Egress).To(BeEmpty())
	g.Expect(spec.Ingress).To(HaveLen(1))
	g.Expect(spec.Ingress[0].From).To(BeEmpty(), "the rule admits every source")
	g.Expect(spec.Ingress[0].Ports).To(Equal(AllowedPorts(protected)))
	g.Expect(cniAdmits(spec, tcp, 15000)).To(BeFalse())
	g.Expect(cniAdmits(spec, tcp, 14999)).To(BeTrue())
	g.Expect(cniAdmits(spec, udp, 5353)).To(BeFalse())
	g.Expect(cniAdmits(spec, sctp, 5353)).To(BeTrue())
}

// TestDesiredEveryPortProtected protects every port of every protocol a
// NetworkPolicy can list. AllowedPorts then has nothing to admit and
// returns an empty list; Desired must not wrap that into an ingress rule
// with an empty ports list, which a NetworkPolicy reads as "every port".
func TestDesiredEveryPortProtected(t *testing.T) {
	g := NewWithT(t)
	protected := []rules.PortRange{pr(tcp, 1, 65535), pr(udp, 1, 65535), pr(sctp, 1, 65535)}
	g.Expect(AllowedPorts(protected)).To(BeEmpty())
	spec := Desired(metav1.LabelSelector{}, protected)
	for _, proto := range Protocols {
		for _, port := range []int32{1, 15000, 65535} {
			g.Expect(cniAdmits(spec, proto, port)).To(BeFalse(),
				"Desired(every port protected) admits %d/%s: spec.ingress = %+v", port, proto, spec.Ingress)
		}
	}
}

// TestAllowedPortsProperty checks, for random sets of protected ranges,
// that the NetworkPolicy admits exactly the unprotected ports of each
// protocol, and that its entries are valid, disjoint and maximal.
func TestAllowedPortsProperty(t *testing.T) {
	const iterations = 2000
	r := rand.New(rand.NewSource(20240611))
	// Ports near the edges and near each other, where off-by-ones live.
	edges := []int32{1, 2, 3, 100, 101, 102, 65533, 65534, 65535}
	randPort := func() int32 {
		switch r.Intn(4) {
		case 0:
			return edges[r.Intn(len(edges))]
		case 1:
			return 1 + r.Int31n(200)
		default:
			return 1 + r.Int31n(maxPort)
		}
	}
	var protectedMap, admittedMap [maxPort + 2]bool
	for it := 0; it < iterations; it++ {
		var protected []rules.PortRange
		n := r.Intn(12)
		for range n {
			proto := Protocols[r.Intn(len(Protocols))]
			a, b := randPort(), randPort()
			if r.Intn(3) == 0 {
				b = a + r.Int31n(5) // short ranges, often single ports
				if b > maxPort {
					b = maxPort
				}
			}
			if a > b {
				a, b = b, a
			}
			protected = append(protected, pr(proto, a, b))
		}
		ports := AllowedPorts(protected)
		got := spans(t, ports)
		spec := Desired(metav1.LabelSelector{}, protected)

		for _, proto := range Protocols {
			clear(protectedMap[:])
			clear(admittedMap[:])
			for _, pr := range protected {
				if pr.Protocol == proto {
					for p := pr.From; p <= pr.To; p++ {
						protectedMap[p] = true
					}
				}
			}
			var mine []span
			for _, s := range got {
				if s.Proto != proto {
					continue
				}
				mine = append(mine, s)
				from, to := s.From, s.To
				if s.All {
					from, to = 1, maxPort
				}
				for p := from; p <= to; p++ {
					admittedMap[p] = true
				}
			}
			// Entries of a protocol: sorted, disjoint and not adjacent
			// (each gap of the protected set is one entry).
			sorted := sort.SliceIsSorted(mine, func(i, j int) bool { return mine[i].From < mine[j].From })
			if !sorted {
				t.Fatalf("iteration %d: %s entries not sorted: %v (protected %v)", it, proto, mine, protected)
			}
			for i := 1; i < len(mine); i++ {
				if mine[i].From <= mine[i-1].To+1 {
					t.Fatalf("iteration %d: %s entries %v and %v overlap or touch (protected %v)", it, proto, mine[i-1], mine[i], protected)
				}
			}
			for p := int32(1); p <= maxPort; p++ {
				if admittedMap[p] == protectedMap[p] {
					t.Fatalf("iteration %d: %d/%s protected=%v but admitted=%v (protected %v, allowed %v)",
						it, p, proto, protectedMap[p], admittedMap[p], protected, got)
				}
			}
			// Spot-check the whole spec as a CNI reads it.
			for _, p := range []int32{1, 2, 100, 101, 65534, 65535, 1 + r.Int31n(maxPort)} {
				if cniAdmits(spec, proto, p) == protectedMap[p] {
					t.Fatalf("iteration %d: Desired admits %d/%s = %v, protected = %v (protected %v)",
						it, p, proto, cniAdmits(spec, proto, p), protectedMap[p], protected)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------

// guardPolicy is the compiled LoopbackService of the Conflicts tests:
// pods app=cart, 15000/TCP (named envoy-admin), 6060-6069/TCP, 5353/UDP.
func guardPolicy(t *testing.T) *rules.Policy {
	t.Helper()
	end := int32(6069)
	p, err := rules.Compile(&v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "guard", Namespace: "shop"},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports: []v1alpha1.LoopbackPort{
				{Port: 15000, Name: "envoy-admin"},
				{Port: 6060, EndPort: &end},
				{Port: 5353, Protocol: corev1.ProtocolUDP},
			},
		},
	})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func testPod(name string, lbls map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: lbls},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/app:1", Ports: ports},
		}},
	}
}

// The namespace's pods: a protected cart pod whose envoy serves admin on
// 15000 (named "admin", protocol left empty, so TCP) and http on 8080, a
// cart pod with an init container naming 6065 "pprof", and an unprotected
// web pod that names its own 15000 "webadmin".
func testPods() []*corev1.Pod {
	cart := testPod("cart-1", map[string]string{"app": "cart"},
		corev1.ContainerPort{Name: "admin", ContainerPort: 15000},
		corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		corev1.ContainerPort{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
	)
	cart2 := testPod("cart-2", map[string]string{"app": "cart", "tier": "debug"})
	cart2.Spec.InitContainers = []corev1.Container{{Name: "warmup", Image: "registry.invalid/warmup:1",
		Ports: []corev1.ContainerPort{{Name: "pprof", ContainerPort: 6065}}}}
	web := testPod("web-1", map[string]string{"app": "web"},
		corev1.ContainerPort{Name: "webadmin", ContainerPort: 15000},
		corev1.ContainerPort{Name: "admin", ContainerPort: 9999},
	)
	return []*corev1.Pod{cart, cart2, web}
}

// views are pods as Conflicts takes them (podview.Of), in order.
func views(pods ...*corev1.Pod) []*podview.Pod {
	out := make([]*podview.Pod, len(pods))
	for i, p := range pods {
		out[i] = podview.Of(p)
	}
	return out
}

type npOpt func(*networkingv1.NetworkPolicy)

func networkPolicy(opts ...npOpt) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-stuff", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	for _, o := range opts {
		o(np)
	}
	return np
}

func selecting(l map[string]string) npOpt {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: l} }
}

func policyTypes(ts ...networkingv1.PolicyType) npOpt {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = ts }
}

func ingress(ports ...networkingv1.NetworkPolicyPort) npOpt {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: ports})
	}
}

func ingressFrom(from []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) npOpt {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: from, Ports: ports})
	}
}

func protoPtr(p corev1.Protocol) *corev1.Protocol { return &p }

func numPort(proto corev1.Protocol, port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: protoPtr(proto), Port: ptr(intstr.FromInt32(port))}
}

func portRange(proto corev1.Protocol, from, to int32) networkingv1.NetworkPolicyPort {
	pp := numPort(proto, from)
	pp.EndPort = ptr(to)
	return pp
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: protoPtr(proto), Port: ptr(intstr.FromString(name))}
}

// hit is a Conflict in comparable form.
type hit struct {
	Rule   int
	Port   string
	Reason string
}

func TestConflicts(t *testing.T) {
	every := "allows every port"
	cases := []struct {
		name string
		np   *networkingv1.NetworkPolicy
		pods []*corev1.Pod // testPods() when nil
		want []hit
	}{
		{
			name: "rule without ports allows every protected port",
			np:   networkPolicy(ingress()),
			want: []hit{{0, "15000/TCP", every}, {0, "6060-6069/TCP", every}, {0, "5353/UDP", every}},
		},
		{
			name: "nil port with protocol TCP allows every TCP port",
			np:   networkPolicy(ingress(networkingv1.NetworkPolicyPort{Protocol: protoPtr(tcp)})),
			want: []hit{{0, "15000/TCP", "allows every TCP port"}, {0, "6060-6069/TCP", "allows every TCP port"}},
		},
		{
			name: "nil port with protocol UDP allows every UDP port",
			np:   networkPolicy(ingress(networkingv1.NetworkPolicyPort{Protocol: protoPtr(udp)})),
			want: []hit{{0, "5353/UDP", "allows every UDP port"}},
		},
		{
			name: "nil port and nil protocol: TCP by default",
			np:   networkPolicy(ingress(networkingv1.NetworkPolicyPort{})),
			want: []hit{{0, "15000/TCP", "allows every TCP port"}, {0, "6060-6069/TCP", "allows every TCP port"}},
		},
		{
			name: "numeric protected port",
			np:   networkPolicy(ingress(numPort(tcp, 15000))),
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "numeric port inside a protected range",
			np:   networkPolicy(ingress(numPort(tcp, 6065))),
			want: []hit{{0, "6060-6069/TCP", "allows port 6065"}},
		},
		{
			name: "numeric port without protocol: TCP by default",
			np:   networkPolicy(ingress(networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(15000))})),
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "numeric port outside",
			np:   networkPolicy(ingress(numPort(tcp, 8080), numPort(tcp, 14999), numPort(tcp, 15001), numPort(tcp, 6059), numPort(tcp, 6070))),
		},
		{
			name: "port range covering the protected port",
			np:   networkPolicy(ingress(portRange(tcp, 14000, 16000))),
			want: []hit{{0, "15000/TCP", "allows ports 14000-16000"}},
		},
		{
			name: "port range ending on the protected port",
			np:   networkPolicy(ingress(portRange(tcp, 14000, 15000))),
			want: []hit{{0, "15000/TCP", "allows ports 14000-15000"}},
		},
		{
			name: "port range overlapping the end of a protected range",
			np:   networkPolicy(ingress(portRange(tcp, 6069, 7000))),
			want: []hit{{0, "6060-6069/TCP", "allows ports 6069-7000"}},
		},
		{
			name: "port range covering both TCP ranges",
			np:   networkPolicy(ingress(portRange(tcp, 1, 65535))),
			want: []hit{{0, "15000/TCP", "allows ports 1-65535"}, {0, "6060-6069/TCP", "allows ports 1-65535"}},
		},
		{
			name: "port range just outside",
			np:   networkPolicy(ingress(portRange(tcp, 15001, 16000), portRange(tcp, 6070, 14999), portRange(tcp, 1, 6059))),
		},
		{
			name: "named port resolving to a protected containerPort of a selected protected pod",
			np:   networkPolicy(ingress(namedPort(tcp, "admin"))),
			want: []hit{{0, "15000/TCP", `allows named port "admin"`}},
		},
		{
			name: "named port resolving on an init container",
			np:   networkPolicy(ingress(namedPort(tcp, "pprof"))),
			want: []hit{{0, "6060-6069/TCP", `allows named port "pprof"`}},
		},
		{
			name: "named UDP port",
			np:   networkPolicy(ingress(namedPort(udp, "dns"))),
			want: []hit{{0, "5353/UDP", `allows named port "dns"`}},
		},
		{
			name: "named port resolving to an unprotected containerPort",
			np:   networkPolicy(ingress(namedPort(tcp, "http"))),
		},
		{
			name: "named port unknown to the pods",
			np:   networkPolicy(ingress(namedPort(tcp, "nope"))),
		},
		{
			name: "named port with the wrong protocol does not resolve",
			np:   networkPolicy(ingress(namedPort(udp, "admin"))),
		},
		{
			name: "named port resolving only on an unprotected pod the policy also selects",
			np:   networkPolicy(selecting(nil), ingress(namedPort(tcp, "webadmin"))),
		},
		{
			// "admin" is 15000 on cart-1 but 9999 on web-1; only the
			// protected pod counts.
			name: "named port resolved on the protected pods only",
			np:   networkPolicy(selecting(map[string]string{"app": "web"}), ingress(namedPort(tcp, "admin"))),
		},
		{
			name: "protocol mismatch: UDP rule, TCP protected port",
			np:   networkPolicy(ingress(numPort(udp, 15000), portRange(udp, 6000, 7000))),
		},
		{
			name: "protocol mismatch: SCTP rule without port",
			np:   networkPolicy(ingress(networkingv1.NetworkPolicyPort{Protocol: protoPtr(sctp)})),
		},
		{
			name: "protocol mismatch: TCP rule, UDP protected port",
			np:   networkPolicy(ingress(numPort(tcp, 5353))),
		},
		{
			name: "Egress-only policy",
			np:   networkPolicy(policyTypes(networkingv1.PolicyTypeEgress), ingress()),
		},
		{
			name: "empty policyTypes with ingress rules counts as Ingress",
			np:   networkPolicy(policyTypes(), ingress(numPort(tcp, 15000))),
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "Ingress and Egress",
			np:   networkPolicy(policyTypes(networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress), ingress(numPort(tcp, 15000))),
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "Ingress policy without rules admits nothing",
			np:   networkPolicy(),
		},
		{
			name: "podSelector that selects no protected pod",
			np:   networkPolicy(selecting(map[string]string{"app": "web"}), ingress()),
		},
		{
			name: "podSelector that selects no pod at all",
			np:   networkPolicy(selecting(map[string]string{"app": "ghost"}), ingress()),
		},
		{
			name: "podSelector selecting a subset of the protected pods",
			np:   networkPolicy(selecting(map[string]string{"tier": "debug"}), ingress(numPort(tcp, 6061))),
			want: []hit{{0, "6060-6069/TCP", "allows port 6061"}},
		},
		{
			name: "podSelector with matchExpressions",
			np: networkPolicy(func(np *networkingv1.NetworkPolicy) {
				np.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"cart", "web"}},
				}}
			}, ingress(numPort(tcp, 15000))),
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "empty podSelector with no pods at all selects every pod",
			np:   networkPolicy(selecting(nil), ingress(numPort(tcp, 15000))),
			pods: []*corev1.Pod{},
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "empty podSelector with only unprotected pods still selects future protected ones",
			np:   networkPolicy(selecting(nil), ingress(numPort(udp, 5353))),
			pods: []*corev1.Pod{testPods()[2]},
			want: []hit{{0, "5353/UDP", "allows port 5353"}},
		},
		{
			name: "ipBlock-only from still admits its sources",
			np: networkPolicy(ingressFrom([]networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
			}, numPort(tcp, 15000))),
			want: []hit{{0, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "podSelector from still admits its sources",
			np: networkPolicy(ingressFrom([]networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "monitoring"}}},
			})),
			want: []hit{{0, "15000/TCP", every}, {0, "6060-6069/TCP", every}, {0, "5353/UDP", every}},
		},
		{
			name: "rule index of the offending rule",
			np:   networkPolicy(ingress(numPort(tcp, 80)), ingress(numPort(udp, 53)), ingress(numPort(tcp, 8080), numPort(tcp, 15000))),
			want: []hit{{2, "15000/TCP", "allows port 15000"}},
		},
		{
			name: "several rules conflict",
			np:   networkPolicy(ingress(numPort(tcp, 15000)), ingress(numPort(udp, 5353), numPort(tcp, 6060))),
			want: []hit{{0, "15000/TCP", "allows port 15000"}, {1, "6060-6069/TCP", "allows port 6060"}, {1, "5353/UDP", "allows port 5353"}},
		},
		{
			name: "first admitting entry of a rule gives the reason",
			np:   networkPolicy(ingress(numPort(tcp, 80), portRange(tcp, 14990, 15005), numPort(tcp, 15000))),
			want: []hit{{0, "15000/TCP", "allows ports 14990-15005"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pods := tc.pods
			if pods == nil {
				pods = testPods()
			}
			var got []hit
			for _, c := range Conflicts(tc.np, guardPolicy(t), views(pods...)) {
				g.Expect(c.Name).To(Equal(tc.np.Name))
				got = append(got, hit{c.Rule, c.Port.String(), c.Reason})
			}
			if tc.want == nil {
				g.Expect(got).To(BeEmpty())
			} else {
				g.Expect(got).To(Equal(tc.want))
			}
		})
	}
}

func TestConflictString(t *testing.T) {
	g := NewWithT(t)
	cs := Conflicts(networkPolicy(ingress(numPort(tcp, 80)), ingress(numPort(tcp, 15000))), guardPolicy(t), views(testPods()...))
	g.Expect(cs).To(HaveLen(1))
	g.Expect(cs[0].String()).To(Equal("shop/allow-stuff (spec.ingress[1] allows port 15000, admitting 15000/TCP)"), "namespaced: a cluster policy reports conflicts from many namespaces")
}

// The managed NetworkPolicy itself never conflicts with its own policy.
func TestDesiredDoesNotConflict(t *testing.T) {
	g := NewWithT(t)
	p := guardPolicy(t)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "loopguard-guard", Namespace: "shop"},
		Spec:       Desired(metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}, p.Ports),
	}
	g.Expect(Conflicts(np, p, views(testPods()...))).To(BeEmpty())
}
