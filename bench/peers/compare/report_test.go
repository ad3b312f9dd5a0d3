package main

import (
	"strings"
	"testing"
	"time"
)

func TestDescribeCommit(t *testing.T) {
	for _, tc := range []struct {
		name, porcelain, want string
	}{
		{"clean", "", "commit abc1234"},
		{"only the report itself", " M docs/comparison.md\n", "commit abc1234"},
		{"a changed file", " M docs/comparison.md\n M bench/peers/compare/vap.go\n?? x.txt\n",
			"commit abc1234, **dirty** (uncommitted changes: bench/peers/compare/vap.go, x.txt)"},
		{"a rename", "R  a.go -> b.go\n", "commit abc1234, **dirty** (uncommitted changes: b.go)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeCommit("abc1234", tc.porcelain, "/r/docs/comparison.md", "/r"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInterleave(t *testing.T) {
	got := interleave([]string{"a", "b"}, 2, []int{1, 16})
	want := []slot{{"a", 0, 1}, {"b", 0, 1}, {"a", 0, 16}, {"b", 0, 16}, {"a", 1, 1}, {"b", 1, 1}, {"a", 1, 16}, {"b", 1, 16}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("slot %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestCPUTicks(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc allows.
	stat := "4242 (kube apiserver)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 12 0 100 0 0"
	got, err := cpuTicks(stat)
	if err != nil || got != 1234+567 {
		t.Errorf("cpuTicks = %d, %v; want %d", got, err, 1234+567)
	}
	if _, err := cpuTicks("4242 (x) S 1"); err == nil {
		t.Error("a short line must be an error")
	}
}

func TestBusiest(t *testing.T) {
	before := map[string]uint64{"a": 100, "b": 100, "gone": 5}
	after := map[string]uint64{"a": 105, "b": 150, "new": 900}
	name, use := busiest(before, after, 2*time.Second)
	if name != "b" || use != 0.25 {
		t.Errorf("busiest = %s %.2f, want b 0.25", name, use)
	}
	if _, use := busiest(before, map[string]uint64{"a": 101}, 2*time.Second); use >= idleThreshold {
		t.Errorf("0.5%% of a core must be idle, got %.3f", use)
	}
}

// TestReportFromObservations: every verdict and every "why" in the report
// comes from what the run recorded, never from text of the harness.
func TestReportFromObservations(t *testing.T) {
	all := cases()
	lg := engineResult{name: "loopguard", cases: map[string]caseResult{}, interleaved: true}
	vap := engineResult{name: "vap", cases: map[string]caseResult{}, interleaved: true,
		notes: []string{"the API server refused bench/peers/policies/vap/access.yaml: CONNECT is not allowed"}}
	for _, c := range all {
		res := caseResult{outcome: admitted}
		if c.wantDeny {
			res = caseResult{outcome: caught, detail: "admission webhook denied the request: " + c.name}
		}
		lg.cases[c.name] = res
		vap.cases[c.name] = res
	}
	race := all[0].name
	for _, c := range all {
		if strings.HasPrefix(c.name, "race, pod second") {
			race = c.name
		}
	}
	vap.cases[race] = caseResult{outcome: missed}
	vap.cases["ephemeral container with a port (pods/ephemeralcontainers)"] = caseResult{outcome: apiRefused, detail: "Pod \"existing\" is invalid: spec.ephemeralContainers[0].ports: Forbidden"}
	lg.points = []point{{policies: 1, concurrency: 1, rounds: []stats{{n: 1000, p50: 3e6, p99: 9e6, rps: 300}}}, {policies: 1, concurrency: 16, rounds: []stats{{n: 40, p50: 3e6, p99: 9e6, rps: 300}}}}
	rep := &report{opts: options{counts: []int{1}, rounds: 1, fillPods: 10}, versions: map[string]string{"loopguard": "commit abc1234"},
		baseline: map[baselineKey][]stats{{1, 1}: {{n: 1000, p50: 2e6, p99: 5e6, rps: 400}}}, engines: []engineResult{lg, vap}}
	md := rep.markdown()
	for _, want := range []string{
		"- **vap**, " + race + " (missed): admitted (the request returned no error)",
		"spec.ephemeralContainers[0].ports: Forbidden",
		"- **vap**: the API server refused bench/peers/policies/vap/access.yaml: CONNECT is not allowed",
		"at loopguard commit abc1234",
		"— (40 requests)", // a p99 from too few samples is not printed
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, never := range []string{"Not expressible", "not expressible", "cannot list"} {
		if strings.Contains(md, never) {
			t.Errorf("report carries the harness's own verdict %q", never)
		}
	}
}

// TestAddedIsOverTheBaselineOfItsN: an engine's added latency at N is over
// the baseline measured while every engine had N policies installed (the
// API server slows with them), not over all the baseline's rounds.
func TestAddedIsOverTheBaselineOfItsN(t *testing.T) {
	at := func(n int, p50 time.Duration) point {
		return point{policies: n, concurrency: 1, rounds: []stats{{n: 1000, p50: p50, rps: 100}}}
	}
	lg := engineResult{name: "loopguard", points: []point{at(1, 6*time.Millisecond), at(1000, 45*time.Millisecond)}}
	rep := &report{opts: options{counts: []int{1, 1000}}, engines: []engineResult{lg}, baseline: map[baselineKey][]stats{
		{1, 1}:    {{p50: 5 * time.Millisecond}},
		{1000, 1}: {{p50: 40 * time.Millisecond}},
	}}
	for n, want := range map[int]time.Duration{1: time.Millisecond, 1000: 5 * time.Millisecond} {
		if got, _ := rep.added("loopguard", n, 1); got != want {
			t.Errorf("added at %d policies = %s, want %s", n, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	ss := func(ms ...int) []stats {
		var out []stats
		for _, m := range ms {
			out = append(out, stats{p50: time.Duration(m) * time.Millisecond, rps: float64(m)})
		}
		return out
	}
	p50 := func(s stats) time.Duration { return s.p50 }
	rps := func(s stats) float64 { return s.rps }
	for _, tc := range []struct {
		in   []stats
		want int
	}{{ss(5), 5}, {ss(9, 5, 7), 7}, {ss(6, 4), 5}, {ss(8, 2, 6, 4), 5}} {
		if got := medianDur(tc.in, p50); got != time.Duration(tc.want)*time.Millisecond {
			t.Errorf("medianDur(%v) = %s, want %d ms", tc.in, got, tc.want)
		}
		if got := medianF(tc.in, rps); got != float64(tc.want) {
			t.Errorf("medianF(%v) = %v, want %d", tc.in, got, tc.want)
		}
	}
}
