package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// reportReader serves NodeBindReports as the informer cache does with
// UnsafeDisableDeepCopy: the stored object itself, no copy.
type reportReader struct {
	client.Reader
	reports map[string]*v1alpha1.NodeBindReport
}

func (r reportReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	rep, ok := r.reports[key.Name]
	if !ok {
		return fmt.Errorf("no report %s", key.Name)
	}
	*obj.(*v1alpha1.NodeBindReport) = *rep
	return nil
}

// BenchmarkRuntimeOf is one runtime view at the large bench's shape: 30
// pods a node, and a policy that selects selected pods spread over as
// many nodes (a namespaced policy: 25; a cluster policy: 3,750 on 5,000
// nodes' worth of reports, here 1,250 nodes with 3 selected each).
func BenchmarkRuntimeOf(b *testing.B) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	lbs := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "envoy", UID: "u", Generation: 1},
		Spec:       v1alpha1.LoopbackServiceSpec{Ports: []v1alpha1.LoopbackPort{{Port: 15000}}},
	}
	p, err := rules.Compile(lbs)
	if err != nil {
		b.Fatal(err)
	}
	for _, shape := range []struct {
		name            string
		nodes, perNode  int
		selectedPerNode int
	}{{"namespaced", 25, 30, 1}, {"cluster", 1250, 30, 3}} {
		reports := map[string]*v1alpha1.NodeBindReport{}
		var selected []*podview.Pod
		for n := range shape.nodes {
			node := fmt.Sprintf("kwok-%04d", n)
			rep := &v1alpha1.NodeBindReport{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: v1alpha1.NodeBindReportStatus{
				ScannedAt: &metav1.Time{Time: now.Add(-time.Minute)}, ScanInterval: &metav1.Duration{Duration: 5 * time.Minute}}}
			for i := range shape.perNode {
				uid := types.UID(fmt.Sprintf("%s-%03d", node, i))
				rep.Status.Pods = append(rep.Status.Pods, v1alpha1.PodBindReport{Namespace: "shop", Name: string(uid), UID: uid})
				if i < shape.selectedPerNode {
					selected = append(selected, podview.Of(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: string(uid), UID: uid},
						Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}))
				}
			}
			reports[node] = rep
		}
		r := reportReader{reports: reports}
		b.Run(shape.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				rt, err := runtimeOf(context.Background(), r, now, p, lbs.Spec.Ports, selected)
				if err != nil || rt.PodsChecked != int32(len(selected)) {
					b.Fatalf("%v: %+v", err, rt)
				}
			}
		})
	}
}

// TestNodeRuntimeLookups: an entry is found, by scan or by map, as a map
// built in the report's order found it: of two entries for one UID, the
// last.
func TestNodeRuntimeLookups(t *testing.T) {
	n := &nodeRuntime{entries: []v1alpha1.PodBindReport{
		{UID: "a", Name: "first"}, {UID: "b", Name: "b"}, {UID: "a", Name: "last"},
	}}
	for i := range 2 * scanLookups {
		mode := "scan"
		if i >= scanLookups {
			mode = "map"
		}
		if got := n.pod("a"); got == nil || got.Name != "last" {
			t.Fatalf("lookup %d (%s): %+v, want the last entry of UID a", i, mode, got)
		}
		if got := n.pod("b"); got == nil || got.Name != "b" {
			t.Fatalf("lookup %d (%s): %+v, want b", i, mode, got)
		}
		if got := n.pod("c"); got != nil {
			t.Fatalf("lookup %d (%s): %+v for a UID the report does not list", i, mode, got)
		}
	}
	if n.byUID == nil {
		t.Errorf("no map after %d lookups", 6*scanLookups)
	}
}
