package hostnet

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/rules"
)

// memoWorld is a node's hostNetwork pods and what applies in their
// namespaces, as an index gives it: a set is replaced, never changed.
type memoWorld struct {
	sets    map[string]*rules.Set
	cluster *rules.Set
	labels  map[string]labels.Set
	pods    []*corev1.Pod
}

func (w *memoWorld) env(ns string) *rules.Env {
	return rules.NewEnv(ns, w.labels[ns], w.sets[ns], w.cluster)
}

func (w *memoWorld) protect(t *testing.T, ns string, port int32) {
	p, err := rules.Compile(&v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", port), Namespace: ns},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: port}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.sets[ns] = rules.NewSet([]*rules.Policy{p})
}

// TestMemoAnalyzesOnlyWhatChanged: the memo's reports are Analyze's at
// every step, and a pod's report is computed again exactly when the pod,
// its namespace's policies or its namespace's labels changed.
func TestMemoAnalyzesOnlyWhatChanged(t *testing.T) {
	w := &memoWorld{sets: map[string]*rules.Set{}, labels: map[string]labels.Set{"ops": {"team": "a"}, "mon": {"team": "b"}}}
	w.protect(t, "ops", 8126)
	w.protect(t, "mon", 9100)
	for i, ns := range []string{"ops", "ops", "mon"} {
		w.pods = append(w.pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("agent-%d", i), UID: types.UID(fmt.Sprint("u", i)), ResourceVersion: "1",
				Labels: map[string]string{"app": "agent"}},
			Spec: corev1.PodSpec{HostNetwork: true, NodeName: "n1",
				Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{ContainerPort: 8126}, {ContainerPort: 9100}}}}}})
	}
	m := NewMemo()
	last := map[string]*string{} // namespace/name → its report's Ports' first element
	var reports []PodReport
	// step runs the memo, checks it against Analyze, and returns which
	// pods (by index in the sorted reports) were computed again.
	step := func(what string) []int {
		t.Helper()
		pods := views(w.pods...)
		got := m.Analyze("n1", pods, w.env)
		if want := Analyze("n1", pods, w.env); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: memo\n %+v\nAnalyze\n %+v", what, got, want)
		}
		var again []int
		next := map[string]*string{}
		for i, r := range got {
			key := r.Namespace + "/" + r.Name
			if next[key] = &r.Ports[0]; last[key] != next[key] {
				again = append(again, i)
			}
		}
		last, reports = next, got
		return again
	}
	want := func(what string, got []int, idx ...int) {
		t.Helper()
		if !reflect.DeepEqual(got, idx) {
			t.Errorf("%s: computed again %v, want %v", what, got, idx)
		}
	}
	// Sorted reports: mon/agent-2, ops/agent-0, ops/agent-1.
	want("first", step("first"), 0, 1, 2)
	want("nothing changed", step("nothing changed"), []int(nil)...)
	w.protect(t, "ops", 8127) // a policy of ops changed: its set replaced
	want("ops's policies", step("ops's policies"), 1, 2)
	w.labels["mon"] = labels.Set{"team": "c"}
	want("mon's labels", step("mon's labels"), 0)
	w.pods[1] = w.pods[1].DeepCopy()
	w.pods[1].ResourceVersion = "2"
	want("a pod changed", step("a pod changed"), 2)
	// A cluster policy for team b's namespaces: none yet.
	clbs, err := rules.CompileCluster(&v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: "mesh"},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}},
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
				Ports: []v1alpha1.LoopbackPort{{Port: 9100}}}}})
	if err != nil {
		t.Fatal(err)
	}
	w.cluster = rules.NewSet([]*rules.Policy{clbs})
	want("a cluster policy", step("a cluster policy"), 0, 1, 2)
	w.labels["mon"] = labels.Set{"team": "b"} // mon is now selected by the cluster policy
	want("mon relabelled into the cluster policy", step("mon relabelled into the cluster policy"), 0)
	if got := reports[0].Policies; !reflect.DeepEqual(got, []string{"ClusterLoopbackService mesh", "LoopbackService mon/p9100"}) {
		t.Errorf("mon/agent-2 selected by %v after mon joined team b", got)
	}
	w.pods[0] = w.pods[0].DeepCopy()
	w.pods[0].Labels, w.pods[0].ResourceVersion = map[string]string{"app": "other"}, "3" // no policy selects it now
	want("a pod relabelled", step("a pod relabelled"), 1)
	noUID := w.pods[2].DeepCopy()
	noUID.UID, noUID.Name = "", "agent-9"
	w.pods = append(w.pods, noUID)
	want("a pod without a UID", step("a pod without a UID"), 1)
	want("a pod without a UID, again", step("a pod without a UID, again"), 1)
	w.pods = w.pods[:2] // mon/agent-2 and mon/agent-9 left the node
	want("a pod left", step("a pod left"), []int(nil)...)
	if n := len(m.nodes["n1"]); n != 2 {
		t.Errorf("the memo keeps %d pods of n1, want 2", n)
	}
	w.pods = nil
	step("no pod")
	if _, ok := m.nodes["n1"]; ok {
		t.Error("the memo keeps a node without hostNetwork pods")
	}
}
