package rules

// Worst cases of a review (issue #15 hole 11): objects the API server
// accepts but that are built to make a review slow or its answer huge.
//
//	go test -run '^$' -bench ReviewHostile -benchtime 3x ./internal/rules/
//
// named: a Service with hostilePorts named targets against pods that each
// declare hostilePorts named container ports (none of them protected, so
// the review finds nothing: pure cost). numeric: hostilePorts Service
// ports that all target the protected 15000 (a finding per port: the size
// of the denial).

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

const (
	hostilePorts = 20000
	hostilePods  = 3
)

// hostileCase is a Service update under review with the cluster it is
// judged against.
type hostileCase struct {
	name     string
	svc, old *corev1.Service
	cluster  Cluster
	want     v1alpha1.EnforcementAction
}

func hostileCases() []hostileCase {
	var pods []*corev1.Pod
	for i := range hostilePods {
		p := pod(fmt.Sprintf("cart-%d", i), withLabels("app", "cart"), withContainer("c"))
		ports := make([]corev1.ContainerPort, hostilePorts)
		for j := range ports {
			ports[j] = corev1.ContainerPort{Name: fmt.Sprintf("n%d", j), ContainerPort: int32(20000 + j)}
		}
		p.Spec.Containers[0].Ports = ports
		pods = append(pods, p)
	}
	named := service("hostile", selector("app", "cart"))
	numeric := service("hostile", selector("app", "cart"))
	for j := range hostilePorts {
		named.Spec.Ports = append(named.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", j), Port: int32(1 + j), TargetPort: intstr.FromString(fmt.Sprintf("n%d", j))})
		numeric.Spec.Ports = append(numeric.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", j), Port: int32(1 + j), TargetPort: intstr.FromInt32(15000)})
	}
	old := service("hostile", selector("app", "cart"), servicePort(80, targetPort(8080)))
	return []hostileCase{
		{"named", named, old, Cluster{Pods: views(pods...)}, ""},
		{"numeric", numeric, old, Cluster{Pods: views(pods...)}, v1alpha1.ActionDeny},
	}
}

func BenchmarkReviewHostile(b *testing.B) {
	env := shopEnv(nsPolicy(b, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000)),
		nsPolicy(b, testNamespace, "debug", podSelector("app", "cart"), protects(6060), enforce(v1alpha1.ActionWarn)))
	for _, c := range hostileCases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			cpu0 := processCPU()
			for b.Loop() {
				action, msg := hostileReview(env, c)
				if action != c.want {
					b.Fatalf("action %q, want %q", action, c.want)
				}
				size = len(msg)
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(size), "msg-bytes")
		})
	}
}

// hostileReview is the webhook's review of the update. (Before
// rules.Review, the webhook evaluated the new and the old object, kept
// what was new by field and reason, and joined every Deny message: 102 s
// and 0 bytes for named, a 6.7 MiB denial for numeric.)
func hostileReview(env *Env, c hostileCase) (v1alpha1.EnforcementAction, string) {
	d := review(env, ReviewRequest{Operation: OperationUpdate, Object: c.svc, OldObject: c.old}, c.cluster)
	return d.Action, d.Denial
}

// processCPU is the CPU time of the process so far: on a shared machine
// cpu-ns/op says what a review costs, ns/op what it waited too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
