package rules

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/podview"
)

// TestAuditIndexAgreesWithFullScan: Audit looks up each object's
// candidates in its label index; its findings are exactly those of every
// object evaluated against the whole namespace, on generated namespaces
// whose Services select by one or two pairs, overlapping, out of scope or
// matching nothing.
func TestAuditIndexAgreesWithFullScan(t *testing.T) {
	keys := []string{"app", "tier", "team"}
	values := []string{"a", "b", "c"}
	pick := func(r *rand.Rand, n int) []string {
		var pairs []string
		for _, i := range r.Perm(len(keys))[:n] {
			pairs = append(pairs, keys[i], values[r.IntN(len(values))])
		}
		return pairs
	}
	env := shopEnv(nsPolicy(t, testNamespace, "admin", protects(15000), protects(9901, lpName("admin"))))
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			var s Snapshot
			s.Env = env
			ports := withContainer("app", port(8080, portName("http")), port(15000, portName("admin")), port(9901, portName("admin-2")))
			for i := range 12 {
				opts := []podOpt{withLabels(pick(r, 1+r.IntN(3))...), ports}
				if i%5 == 0 {
					opts = append(opts, terminating())
				}
				s.Add(pod(fmt.Sprintf("pod-%d", i), opts...))
				s.Add(deployment(fmt.Sprintf("deploy-%d", i), withLabels(pick(r, 1+r.IntN(3))...), ports))
			}
			for i := range 12 {
				opts := []svcOpt{selector(pick(r, 1+r.IntN(2))...), servicePort(80, targetPort(15000)), servicePort(81, targetPortName("admin"))}
				switch i {
				case 0:
					opts = []svcOpt{servicePort(80, targetPort(15000))} // no selector
				case 1:
					opts = append(opts, externalName("example.com"))
				}
				s.Add(service(fmt.Sprintf("svc-%d", i), opts...))
			}
			got := Audit(s)
			// The reference: every object against the whole namespace.
			full := Cluster{Pods: s.LivePods(), Services: s.Services, Workloads: s.Workloads}
			var want []Judged
			for _, o := range append(append(liveObjects(s.LivePods()), servicesOf(s.Services)...), s.Workloads...) {
				want = append(want, Judged{Object: o, Findings: Evaluate(env, o, full)})
			}
			if len(got.Judged) != len(want) {
				t.Fatalf("judged %d objects, want %d", len(got.Judged), len(want))
			}
			n := 0
			for i := range want {
				n += len(want[i].Findings)
				if got.Judged[i].Object != want[i].Object || !reflect.DeepEqual(got.Judged[i].Findings, want[i].Findings) {
					t.Errorf("%v:\n got %v\nwant %v", want[i].Object.(interface{ GetName() string }).GetName(), findingMessages(got.Judged[i].Findings), findingMessages(want[i].Findings))
				}
			}
			if n == 0 {
				t.Fatal("no finding at all: the case tests nothing")
			}
		})
	}
}

func liveObjects(pods []*podview.Pod) []runtime.Object {
	out := make([]runtime.Object, len(pods))
	for i, p := range pods {
		out[i] = p
	}
	return out
}

func servicesOf(svcs []*corev1.Service) []runtime.Object {
	out := make([]runtime.Object, len(svcs))
	for i, s := range svcs {
		out[i] = s
	}
	return out
}

func findingMessages(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Message())
	}
	return out
}
