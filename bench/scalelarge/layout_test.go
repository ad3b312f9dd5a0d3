package main

import (
	"net"
	"testing"
	"time"
)

// TestLayoutMatchesSelectors checks the counts the tool waits for against
// a brute-force evaluation of every selector over every pod.
func TestLayoutMatchesSelectors(t *testing.T) {
	for _, s := range []Size{Small, {Nodes: 19, Namespaces: 13, Pods: 13 * 150, Policies: 91, ClusterPolicies: 20}} {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		pods := make([]PodPlan, s.Pods)
		nsGroup := map[string]string{}
		hostNet := 0
		for i := range pods {
			pods[i] = s.Pod(i)
			nsGroup[pods[i].NS] = NSGroup(i / s.PerNS())
			if pods[i].HostNetwork {
				hostNet++
			}
		}
		if hostNet*50 != s.Pods {
			t.Errorf("%+v: %d hostNetwork pods, want 2%%", s, hostNet)
		}
		count := func(p PolicyPlan) (int, int) {
			n, nss := 0, map[string]bool{}
			for _, pod := range pods {
				if (p.Cluster && nsGroup[pod.NS] != p.Group) || (!p.Cluster && pod.NS != p.NS) {
					continue
				}
				nss[pod.NS] = true
				if (p.Label == "app" && pod.App == p.Val) || (p.Label == "tier" && pod.Tier == p.Val) {
					n++
				}
			}
			return n, len(nss)
		}
		selected := map[string]int{}
		nps := 0
		names := map[string]bool{}
		for j := 0; j < s.Policies; j++ {
			p := s.Policy(j)
			if names[p.NS+"/"+p.Name] {
				t.Fatalf("policy %d: duplicate name %s/%s", j, p.NS, p.Name)
			}
			names[p.NS+"/"+p.Name] = true
			if n, _ := count(p); n != p.Matched || n == 0 {
				t.Errorf("policy %d (%s=%s in %s): %d pods, layout says %d", j, p.Label, p.Val, p.NS, n, p.Matched)
			}
			selected[p.NS+"/"+p.Label+"="+p.Val]++
			nps++
		}
		for c := 0; c < s.ClusterPolicies; c++ {
			p := s.ClusterPolicy(c)
			n, nss := count(p)
			if n != p.Matched || nss != p.Namespaces {
				t.Errorf("cluster policy %d: %d pods in %d namespaces, layout says %d in %d", c, n, nss, p.Matched, p.Namespaces)
			}
			nps += nss
		}
		if nps != s.ExpectedNetworkPolicies() {
			t.Errorf("%d NetworkPolicies, layout says %d", nps, s.ExpectedNetworkPolicies())
		}
		// Overlap: some pod is selected by both an app and a tier policy.
		if selected[NSName(0)+"/app=a0"] == 0 || selected[NSName(0)+"/tier=t0"] == 0 {
			t.Errorf("no overlapping selections in %s: %v", NSName(0), selected)
		}
	}
}

// TestPlannedPodIPs: every pod not on the host network has an IP of its
// own, in its node's pod CIDR (kwok sets it; a duplicate would make two pods
// one address to loopguard).
func TestPlannedPodIPs(t *testing.T) {
	for _, s := range []Size{Small, Large, {Nodes: 7, Namespaces: 13, Pods: 13 * 50, Policies: 1}} {
		seen := map[string]int{}
		for i := 0; i < s.Pods; i++ {
			p := s.Pod(i)
			if p.HostNetwork != (p.IP == "") {
				t.Fatalf("%+v pod %d: hostNetwork %v, IP %q", s, i, p.HostNetwork, p.IP)
			}
			if p.IP == "" {
				continue
			}
			_, cidr, err := net.ParseCIDR(PodCIDR(i % s.Nodes))
			if err != nil {
				t.Fatal(err)
			}
			ip := net.ParseIP(p.IP)
			if ip == nil || !cidr.Contains(ip) || ip.To4()[3] < 2 || ip.To4()[3] == 255 {
				t.Fatalf("%+v pod %d on %s: IP %s outside %s's hosts", s, i, p.Node, p.IP, cidr)
			}
			if j, dup := seen[p.IP]; dup {
				t.Fatalf("%+v: pods %d and %d both get %s", s, j, i, p.IP)
			}
			seen[p.IP] = i
		}
	}
}

func TestValidateRefusesAboveEnvelope(t *testing.T) {
	for _, s := range []Size{
		{Nodes: 5001, Namespaces: 1500, Pods: 150000, Policies: 10000, ClusterPolicies: 20},
		{Nodes: 5000, Namespaces: 1500, Pods: 151500, Policies: 10000, ClusterPolicies: 20},
		{Nodes: 5000, Namespaces: 1500, Pods: 150000, Policies: 10001, ClusterPolicies: 20},
		{Nodes: 50, Namespaces: 15, Pods: 1501, Policies: 100},
		{Nodes: 10, Namespaces: 15, Pods: 1500, Policies: 100}, // 150 pods a node
	} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := Large.Validate(); err != nil {
		t.Error(err)
	}
	if got := Large.Checkpoints(); len(got) != 3 || got[0] != 10000 || got[1] != 50000 || got[2] != 150000 {
		t.Errorf("checkpoints %v", got)
	}
}

func TestPercentileAndCurve(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %s, want %s", c.p, got, c.want)
		}
	}
	a, b := Sample{Pods: 10000, RSSKiB: 100 * 1024}, Sample{Pods: 50000, RSSKiB: 300 * 1024}
	if got := PerThousand(a, b); got != 5 {
		t.Errorf("PerThousand = %v, want 5", got)
	}
	if got := Curve([]Sample{a, b}); got != "    10000 pods: RSS   100.0 MB\n    50000 pods: RSS   300.0 MB  (+5.00 MB per 1,000 pods since 10000)\n" {
		t.Errorf("Curve = %q", got)
	}
}
