package rules

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// setFixture is a set whose policies exercise the port index:
//
//	admin     15000/TCP named "envoy-admin"
//	low       100-199/TCP
//	mid       200-299/TCP          (adjacent to low)
//	high      250-400/TCP          (overlaps mid on 250-299)
//	edges     1/TCP, 65535/TCP
//	dns       53/UDP named "dns"
//	sctp      9000-9001/SCTP
//	self      7000-7100/TCP and 7050-7200/TCP (overlapping ranges of one policy)
//	stats     15000-15090/TCP named "envoy-admin" (a second policy on 15000 and on the name)
func setFixture(t *testing.T) *Set {
	t.Helper()
	return NewSet([]*Policy{
		nsPolicy(t, "shop", "admin", protects(15000, lpName("envoy-admin"))),
		nsPolicy(t, "shop", "low", protects(100, through(199))),
		nsPolicy(t, "shop", "mid", protects(200, through(299))),
		nsPolicy(t, "shop", "high", protects(250, through(400))),
		nsPolicy(t, "shop", "edges", protects(1), protects(65535)),
		nsPolicy(t, "shop", "dns", protects(53, lpProtocol(corev1.ProtocolUDP), lpName("dns"))),
		nsPolicy(t, "shop", "sctp", protects(9000, through(9001), lpProtocol(corev1.ProtocolSCTP))),
		nsPolicy(t, "shop", "self", protects(7000, through(7100)), protects(7050, through(7200))),
		nsPolicy(t, "shop", "stats", protects(15000, through(15090), lpName("envoy-admin"))),
	})
}

func TestSetCovering(t *testing.T) {
	set := setFixture(t)
	const (
		tcp  = corev1.ProtocolTCP
		udp  = corev1.ProtocolUDP
		sctp = corev1.ProtocolSCTP
	)
	ref := func(name string) string { return "LoopbackService shop/" + name }
	tests := []struct {
		name  string
		proto corev1.Protocol
		port  int32
		want  []string // sorted policy refs
	}{
		{"single port", tcp, 15000, []string{ref("admin"), ref("stats")}},
		{"single port, next port in the other policy's range only", tcp, 15001, []string{ref("stats")}},
		{"just below a single port", tcp, 14999, nil},
		{"end of range", tcp, 15090, []string{ref("stats")}},
		{"just above a range", tcp, 15091, nil},
		{"start of range", tcp, 100, []string{ref("low")}},
		{"inside a range", tcp, 150, []string{ref("low")}},
		{"just below a range", tcp, 99, nil},
		{"end of range adjacent to the next", tcp, 199, []string{ref("low")}},
		{"start of adjacent range", tcp, 200, []string{ref("mid")}},
		{"before the overlap", tcp, 249, []string{ref("mid")}},
		{"start of overlap: both policies", tcp, 250, []string{ref("high"), ref("mid")}},
		{"inside overlap: both policies", tcp, 275, []string{ref("high"), ref("mid")}},
		{"end of overlap: both policies", tcp, 299, []string{ref("high"), ref("mid")}},
		{"after the overlap", tcp, 300, []string{ref("high")}},
		{"end of overlapping range", tcp, 400, []string{ref("high")}},
		{"just outside overlapping range", tcp, 401, nil},
		{"port 1", tcp, 1, []string{ref("edges")}},
		{"port 2", tcp, 2, nil},
		{"port 65535", tcp, 65535, []string{ref("edges")}},
		{"port 65534", tcp, 65534, nil},
		{"port 0", tcp, 0, nil},
		{"negative port", tcp, -1, nil},
		{"above 65535", tcp, 65536, nil},
		{"UDP policy covers UDP port", udp, 53, []string{ref("dns")}},
		{"UDP policy does not cover TCP port", tcp, 53, nil},
		{"TCP policy does not cover UDP port", udp, 15000, nil},
		{"TCP policy does not cover SCTP port", sctp, 150, nil},
		{"SCTP range start", sctp, 9000, []string{ref("sctp")}},
		{"SCTP range end", sctp, 9001, []string{ref("sctp")}},
		{"SCTP range, TCP port", tcp, 9000, nil},
		{"empty protocol is not defaulted by Covering", "", 15000, nil},
		{"overlapping ranges of one policy: first only", tcp, 7000, []string{ref("self")}},
		{"overlapping ranges of one policy: listed once", tcp, 7075, []string{ref("self")}},
		{"overlapping ranges of one policy: second only", tcp, 7200, []string{ref("self")}},
		{"overlapping ranges of one policy: outside", tcp, 7201, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policyNames(set.Covering(tt.proto, tt.port))
			slices.Sort(got)
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Covering(%s, %d) = %q, want %q", tt.proto, tt.port, got, tt.want)
			}
		})
	}
}

func TestSetNaming(t *testing.T) {
	set := setFixture(t)
	tests := []struct {
		name string
		port string
		want []string
	}{
		{"name given by two policies", "envoy-admin", []string{"LoopbackService shop/admin", "LoopbackService shop/stats"}},
		{"UDP name", "dns", []string{"LoopbackService shop/dns"}},
		{"unknown name", "http", nil},
		{"empty name is never indexed", "", nil},
		{"names are case-sensitive", "DNS", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policyNames(set.Naming(tt.port))
			slices.Sort(got)
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Naming(%q) = %q, want %q", tt.port, got, tt.want)
			}
		})
	}
}

func TestSetNamingListsPolicyOnce(t *testing.T) {
	// Two ports of one policy with the same name (e.g. one per protocol).
	p := nsPolicy(t, "shop", "dns",
		protects(53, lpName("dns")),
		protects(53, lpProtocol(corev1.ProtocolUDP), lpName("dns")))
	got := NewSet([]*Policy{p}).Naming("dns")
	if len(got) != 1 || got[0] != p {
		t.Errorf("Naming(dns) = %q, want the policy once", policyNames(got))
	}
}

func TestSetEmptyAndNil(t *testing.T) {
	tests := []struct {
		name string
		set  *Set
	}{
		{"nil set", nil},
		{"set of nil slice", NewSet(nil)},
		{"set of empty slice", NewSet([]*Policy{})},
		{"set of a policy without ports", NewSet([]*Policy{{Ref: PolicyRef{Kind: KindLoopbackService, Namespace: "shop", Name: "none"}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Covering(corev1.ProtocolTCP, 15000); got != nil {
				t.Errorf("Covering = %q, want nil", policyNames(got))
			}
			if got := tt.set.Naming("envoy-admin"); got != nil {
				t.Errorf("Naming = %q, want nil", policyNames(got))
			}
		})
	}
	if n := (*Set)(nil).Len(); n != 0 {
		t.Errorf("nil set: Len() = %d, want 0", n)
	}
	if ps := (*Set)(nil).Policies(); ps != nil {
		t.Errorf("nil set: Policies() = %v, want nil", ps)
	}
	if n := NewSet(nil).Len(); n != 0 {
		t.Errorf("empty set: Len() = %d, want 0", n)
	}
}

func TestSetPoliciesAndLen(t *testing.T) {
	set := setFixture(t)
	if got := set.Len(); got != 9 {
		t.Errorf("Len() = %d, want 9", got)
	}
	want := []string{"admin", "low", "mid", "high", "edges", "dns", "sctp", "self", "stats"}
	for i, p := range set.Policies() {
		if p.Ref.Name != want[i] {
			t.Errorf("Policies()[%d] = %s, want %s (input order)", i, p.Ref.Name, want[i])
		}
	}
}

// TestSetCoveringMatchesLinearScan checks the index against the obvious
// definition on every port of a set with many overlapping ranges.
func TestSetCoveringMatchesLinearScan(t *testing.T) {
	var policies []*Policy
	for i := int32(0); i < 40; i++ {
		from := 1 + i*37%500
		policies = append(policies, &Policy{
			Ref: PolicyRef{Kind: KindLoopbackService, Namespace: "shop", Name: string(rune('a'+i%26)) + string(rune('a'+i/26))},
			Ports: []PortRange{
				{Protocol: corev1.ProtocolTCP, From: from, To: from + i%11},
				{Protocol: corev1.ProtocolTCP, From: 600 - i*3, To: 600 - i*3},
			},
		})
	}
	set := NewSet(policies)
	for p := int32(0); p <= 700; p++ {
		var want []*Policy
		for _, pol := range policies {
			if _, ok := pol.Protects(corev1.ProtocolTCP, p); ok {
				want = append(want, pol)
			}
		}
		got := set.Covering(corev1.ProtocolTCP, p)
		if !slices.Equal(got, want) {
			t.Fatalf("Covering(TCP, %d) = %q, want %q", p, policyNames(got), policyNames(want))
		}
	}
}

func TestPortRange(t *testing.T) {
	tests := []struct {
		name   string
		r      PortRange
		proto  corev1.Protocol
		port   int32
		want   bool
		wantSt string
	}{
		{"single port, match", PortRange{Protocol: "TCP", From: 15000, To: 15000}, "TCP", 15000, true, "15000/TCP"},
		{"single port, other protocol", PortRange{Protocol: "TCP", From: 15000, To: 15000}, "UDP", 15000, false, "15000/TCP"},
		{"range start", PortRange{Protocol: "UDP", From: 10, To: 20}, "UDP", 10, true, "10-20/UDP"},
		{"range end", PortRange{Protocol: "UDP", From: 10, To: 20}, "UDP", 20, true, "10-20/UDP"},
		{"below range", PortRange{Protocol: "UDP", From: 10, To: 20}, "UDP", 9, false, "10-20/UDP"},
		{"above range", PortRange{Protocol: "UDP", From: 10, To: 20}, "UDP", 21, false, "10-20/UDP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Contains(tt.proto, tt.port); got != tt.want {
				t.Errorf("Contains(%s, %d) = %v, want %v", tt.proto, tt.port, got, tt.want)
			}
			if got := tt.r.String(); got != tt.wantSt {
				t.Errorf("String() = %q, want %q", got, tt.wantSt)
			}
		})
	}
}
