package main

import (
	"fmt"
	"slices"
)

// Size is one run's shape. Large is the Kubernetes scalability envelope
// (5,000 nodes, 150,000 pods); the tool refuses anything above it.
type Size struct {
	Nodes, Namespaces, Pods, Policies, ClusterPolicies int
}

var (
	Large = Size{Nodes: 5000, Namespaces: 1500, Pods: 150000, Policies: 10000, ClusterPolicies: 20}
	Small = Size{Nodes: 50, Namespaces: 15, Pods: 1500, Policies: 100, ClusterPolicies: 20}
)

// Groups of namespaces the cluster policies select (label groupLabel).
const (
	groups     = 10
	apps       = 10 // pod label app=a0..a9, by the pod's index in its namespace
	tiers      = 4  // pod label tier=t0..t3
	groupLabel = "scale.loopguard.io/group"
	basePort   = 15000
)

// Validate refuses sizes above the envelope or that the layout cannot
// spread evenly (every namespace holds the same pods).
func (s Size) Validate() error {
	switch {
	case s.Nodes < 1 || s.Nodes > Large.Nodes, s.Namespaces < 1 || s.Namespaces > Large.Namespaces,
		s.Pods < 1 || s.Pods > Large.Pods, s.Policies < 0 || s.Policies > Large.Policies,
		s.ClusterPolicies < 0 || s.ClusterPolicies > Large.ClusterPolicies:
		return fmt.Errorf("size %+v is outside the envelope %+v", s, Large)
	case s.Pods%s.Namespaces != 0 || s.PerNS()%50 != 0:
		return fmt.Errorf("pods (%d) must be namespaces (%d) times a multiple of 50 (2%% hostNetwork)", s.Pods, s.Namespaces)
	case (s.Pods+s.Nodes-1)/s.Nodes > maxPodsPerNode:
		return fmt.Errorf("pods (%d) on %d nodes is more than %d a node", s.Pods, s.Nodes, maxPodsPerNode)
	}
	return nil
}

// PerNS is the number of pods in each namespace.
func (s Size) PerNS() int { return s.Pods / s.Namespaces }

// NSName names namespace i.
func NSName(i int) string { return fmt.Sprintf("scale-%04d", i) }

// NodeName names node n.
func NodeName(n int) string { return fmt.Sprintf("kwok-%04d", n) }

// PodPlan is where pod i goes and what it carries.
type PodPlan struct {
	NS, Name, Node string
	App, Tier      string
	HostNetwork    bool
	IP             string // in the node's PodCIDR; empty for hostNetwork pods
}

// maxPodsPerNode is the kubelet's default (the nodes' allocatable pods).
const maxPodsPerNode = 110

// PodCIDR is node n's pod CIDR, a /24 of its own.
func PodCIDR(n int) string { return fmt.Sprintf("10.%d.%d.0/24", 64+n/256, n%256) }

// Pod lays out pod i: namespace i/PerNS, spread round-robin over the nodes
// (no scheduler needed), labels app=a(m%10) and tier=t(m%4) where m is its
// index in the namespace, and 2% hostNetwork (m%50 == 0). Its IP is planned
// too (host i/Nodes+2 of its node's CIDR), so that kwok replaying its
// pod-ready stage sets the same IP again (bench/tools/kwok/config).
func (s Size) Pod(i int) PodPlan {
	m, n := i%s.PerNS(), i%s.Nodes
	p := PodPlan{NS: NSName(i / s.PerNS()), Name: fmt.Sprintf("p-%03d", m), Node: NodeName(n),
		App: fmt.Sprintf("a%d", m%apps), Tier: fmt.Sprintf("t%d", m%tiers), HostNetwork: m%50 == 0}
	if !p.HostNetwork {
		p.IP = fmt.Sprintf("10.%d.%d.%d", 64+n/256, n%256, 2+i/s.Nodes)
	}
	return p
}

// PolicyPlan is one LoopbackService (Cluster: a ClusterLoopbackService,
// NS then empty) and the pods it must report as matched.
type PolicyPlan struct {
	NS, Name   string
	Label, Val string // podSelector matchLabels {Label: Val}
	Group      string // cluster policies: namespaceSelector {groupLabel: Group}
	Port       int
	Matched    int
	Namespaces int // namespaces whose pods it selects (a NetworkPolicy each)
	Cluster    bool
}

// Policy lays out namespaced policy j: namespace j%Namespaces, and in it
// (q = j/Namespaces) alternately app=a(q/2) and tier=t(q/2): a tier policy
// selects pods of several app policies, so selections overlap.
func (s Size) Policy(j int) PolicyPlan {
	q := j / s.Namespaces
	p := PolicyPlan{NS: NSName(j % s.Namespaces), Name: fmt.Sprintf("lbs-%02d", q), Port: basePort + q%100, Namespaces: 1}
	if q%2 == 0 {
		p.Label, p.Val = "app", fmt.Sprintf("a%d", (q/2)%apps)
		p.Matched = countMod(s.PerNS(), apps, (q/2)%apps)
	} else {
		p.Label, p.Val = "tier", fmt.Sprintf("t%d", (q/2)%tiers)
		p.Matched = countMod(s.PerNS(), tiers, (q/2)%tiers)
	}
	return p
}

// ClusterPolicy lays out cluster policy c: the namespaces of group c%10,
// pods tier=t(c%4), overlapping the namespaced policies.
func (s Size) ClusterPolicy(c int) PolicyPlan {
	g := c % groups
	ns := countMod(s.Namespaces, groups, g)
	return PolicyPlan{Name: fmt.Sprintf("scale-clbs-%02d", c), Label: "tier", Val: fmt.Sprintf("t%d", c%tiers),
		Group: fmt.Sprintf("g%d", g), Port: basePort + 100 + c, Cluster: true, Namespaces: ns,
		Matched: ns * countMod(s.PerNS(), tiers, c%tiers)}
}

// NSGroup is the group label of namespace i.
func NSGroup(i int) string { return fmt.Sprintf("g%d", i%groups) }

// ExpectedNetworkPolicies is the number of NetworkPolicies loopguard must
// manage: one per namespaced policy, one per selected namespace of a
// cluster policy.
func (s Size) ExpectedNetworkPolicies() int {
	n := s.Policies
	for c := 0; c < s.ClusterPolicies; c++ {
		n += s.ClusterPolicy(c).Namespaces
	}
	return n
}

// Checkpoints are the pod counts the manager's memory is sampled at:
// 10k, 50k and 150k pods for the large size, the same fractions otherwise.
func (s Size) Checkpoints() []int {
	return slices.Compact([]int{max(1, s.Pods/15), max(1, s.Pods/3), s.Pods})
}

// countMod counts the k in [0,n) with k%mod == r.
func countMod(n, mod, r int) int {
	if r >= n {
		return 0
	}
	return (n-1-r)/mod + 1
}
