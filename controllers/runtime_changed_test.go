package controllers

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestChangedPodsBetweenReports: the pods handed to the policies after a
// report changed are the ones added, removed or changed, once each,
// sorted by UID; a UID listed twice counts as its last entry, as it
// always did.
func TestChangedPodsBetweenReports(t *testing.T) {
	entry := func(uid, name string, port int32) v1alpha1.PodBindReport {
		p := v1alpha1.PodBindReport{Namespace: "shop", Name: name, UID: types.UID(uid)}
		if port != 0 {
			p.Listeners = []v1alpha1.BindListener{{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: port}}
		}
		return p
	}
	uids := func(ps []v1alpha1.PodBindReport) []string {
		var out []string
		for _, p := range ps {
			out = append(out, string(p.UID)+"/"+p.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		prev, cur []v1alpha1.PodBindReport
		want      []string
	}{
		{"first report", nil, []v1alpha1.PodBindReport{entry("u2", "b", 0), entry("u1", "a", 0)}, []string{"u1/a", "u2/b"}},
		{"unchanged", []v1alpha1.PodBindReport{entry("u1", "a", 15000)}, []v1alpha1.PodBindReport{entry("u1", "a", 15000)}, nil},
		{"a listener appears", []v1alpha1.PodBindReport{entry("u1", "a", 0), entry("u2", "b", 0)}, []v1alpha1.PodBindReport{entry("u2", "b", 0), entry("u1", "a", 15000)}, []string{"u1/a"}},
		{"added and removed", []v1alpha1.PodBindReport{entry("u1", "a", 0), entry("u3", "c", 0)}, []v1alpha1.PodBindReport{entry("u2", "b", 0), entry("u3", "c", 0)}, []string{"u1/a", "u2/b"}},
		{"stale: every pod", []v1alpha1.PodBindReport{entry("u1", "a", 0), entry("u2", "b", 9)}, nil, []string{"u1/a", "u2/b"}},
		{"a UID twice: the last entry", []v1alpha1.PodBindReport{entry("u1", "a", 0)}, []v1alpha1.PodBindReport{entry("u1", "a", 15000), entry("u1", "a", 0)}, nil},
		{"a UID twice, changed", []v1alpha1.PodBindReport{entry("u1", "a", 0)}, []v1alpha1.PodBindReport{entry("u1", "a", 0), entry("u1", "x", 0)}, []string{"u1/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := uids(changedPods(podDigests(tc.prev), podDigests(tc.cur)))
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("changed pods (-want +got):\n%s", d)
			}
		})
	}

	// Against the map the controller kept before, on random reports.
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() []v1alpha1.PodBindReport {
		var out []v1alpha1.PodBindReport
		for range rng.IntN(12) {
			out = append(out, entry(fmt.Sprintf("u%d", rng.IntN(15)), fmt.Sprintf("p%d", rng.IntN(2)), int32(rng.IntN(3))))
		}
		return out
	}
	reference := func(prev, cur []v1alpha1.PodBindReport) []string {
		last := func(ps []v1alpha1.PodBindReport) map[types.UID]v1alpha1.PodBindReport {
			m := map[types.UID]v1alpha1.PodBindReport{}
			for _, p := range ps {
				m[p.UID] = p
			}
			return m
		}
		pm, cm := last(prev), last(cur)
		var out []v1alpha1.PodBindReport
		for uid, c := range cm {
			if p, ok := pm[uid]; !ok || digest(&p) != digest(&c) {
				out = append(out, c)
			}
		}
		for uid, p := range pm {
			if _, ok := cm[uid]; !ok {
				out = append(out, p)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
		return uids(out)
	}
	for i := range 2000 {
		prev, cur := random(), random()
		if d := cmp.Diff(reference(prev, cur), uids(changedPods(podDigests(prev), podDigests(cur)))); d != "" {
			t.Fatalf("case %d: prev %v, cur %v (-reference +got):\n%s", i, uids(prev), uids(cur), d)
		}
	}
}

// BenchmarkReportDigestsMemory reports the live heap per pod of the
// report controller's digests at the large bench's shape (5,000 nodes,
// 30 pods each): the sorted slices it keeps, and a map per node as it
// kept before.
func BenchmarkReportDigestsMemory(b *testing.B) {
	const nodes, perNode = 5000, 30
	reports := make([][]v1alpha1.PodBindReport, nodes)
	for n := range reports {
		for i := range perNode {
			reports[n] = append(reports[n], v1alpha1.PodBindReport{Namespace: fmt.Sprintf("scale-%04d", (n+i*nodes)/100), Name: fmt.Sprintf("p-%03d", i), UID: types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", n, i))})
		}
	}
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	b.Run("slices", func(b *testing.B) {
		for range b.N {
			before := live()
			last := map[string][]podDigest{}
			for n, r := range reports {
				last[benchNodeName(n)] = podDigests(r)
			}
			b.ReportMetric(float64(live()-before)/(nodes*perNode), "B/pod")
			runtime.KeepAlive(last)
		}
	})
	b.Run("maps", func(b *testing.B) {
		type entry struct {
			namespace, name string
			hostNetwork     bool
			digest          [32]byte
		}
		for range b.N {
			before := live()
			last := map[string]map[types.UID]entry{}
			for n, r := range reports {
				m := map[types.UID]entry{}
				for i := range r {
					m[r[i].UID] = entry{r[i].Namespace, r[i].Name, r[i].HostNetwork, digest(&r[i])}
				}
				last[benchNodeName(n)] = m
			}
			b.ReportMetric(float64(live()-before)/(nodes*perNode), "B/pod")
			runtime.KeepAlive(last)
		}
	})
}

// benchNodeName names bench node n.
func benchNodeName(n int) string { return fmt.Sprintf("kwok-%04d", n) }
