package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
)

func portForwardAllowed(subjects ...v1alpha1.Subject) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.PortForward = &v1alpha1.PortForwardSpec{Allowed: subjects}
	}
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

// deletingService marks a Service terminating, held by a finalizer.
func deletingService() svcOpt {
	return func(s *corev1.Service) {
		ts := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		s.DeletionTimestamp, s.Finalizers = &ts, []string{"example.com/hold"}
	}
}

func withFinalizers(f ...string) svcOpt { return func(s *corev1.Service) { s.Finalizers = f } }

// manyPorts gives a Service n ports, all targeting target.
func manyPorts(n int, target intstr.IntOrString) svcOpt {
	return func(s *corev1.Service) {
		for i := range n {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: int32(1 + i), TargetPort: target})
		}
	}
}

func TestReview(t *testing.T) {
	deny := nsPolicy(t, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000))
	warn := nsPolicy(t, testNamespace, "debug", podSelector("app", "cart"), protects(6060), enforce(v1alpha1.ActionWarn))
	denyCore := nsPolicy(t, testNamespace, "core", podSelector("app", "cart", "tier", "core"), protects(15000))
	warn15000 := nsPolicy(t, testNamespace, "soft", podSelector("app", "cart"), protects(15000), enforce(v1alpha1.ActionWarn))
	breakGlass := nsPolicy(t, testNamespace, "guard", podSelector("app", "cart"), protects(15000),
		portForwardAllowed(v1alpha1.Subject{Kind: v1alpha1.SubjectGroup, Name: "sre"}, v1alpha1.Subject{Kind: v1alpha1.SubjectUser, Name: "alice"}))
	cart := func(name string, opts ...podOpt) *corev1.Pod {
		return pod(name, append([]podOpt{withLabels("app", "cart"), withContainer("app", port(8080))}, opts...)...)
	}
	pods := Cluster{Pods: views(cart("cart-0"), cart("cart-1"), pod("other-0", withLabels("app", "other"), withContainer("app", port(8080))))}
	create := func(obj runtime.Object) ReviewRequest { return ReviewRequest{Operation: OperationCreate, Object: obj} }
	update := func(old, cur runtime.Object) ReviewRequest {
		return ReviewRequest{Operation: OperationUpdate, Object: cur, OldObject: old, Requester: Requester{Username: "bob", Groups: []string{"dev"}}}
	}
	as := func(r ReviewRequest, user string, groups ...string) ReviewRequest {
		r.Requester = Requester{Username: user, Groups: groups}
		return r
	}
	closed := make(chan struct{})
	close(closed)
	cancelled := func(r ReviewRequest) ReviewRequest { r.Done = closed; return r }

	for _, tc := range []struct {
		name     string
		policies []*Policy
		req      ReviewRequest
		cluster  Cluster
		want     v1alpha1.EnforcementAction
		// reason of the first finding, and substrings of the denial (Deny)
		// or of the first warning (Warn).
		reason string
		msg    []string
	}{
		{name: "create: Deny finding", policies: []*Policy{deny},
			req:     create(service("admin", selector("app", "cart"), servicePort(80, targetPort(15000)))),
			cluster: pods, want: v1alpha1.ActionDeny, reason: ReasonServiceTarget, msg: []string{`service "admin" port 80`, "LoopbackService shop/envoy-admin"}},
		{name: "delete is not judged", policies: []*Policy{deny},
			req: ReviewRequest{Operation: "DELETE", Object: service("admin", selector("app", "cart"), servicePort(80, targetPort(15000)))}, cluster: pods},

		// Hole 5: the old finding was on the same field, with another port
		// and a milder policy.
		{name: "update: Warn on 6060 does not mask Deny on 15000", policies: []*Policy{deny, warn},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(6060))),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(15000)))),
			cluster: pods, want: v1alpha1.ActionDeny, reason: ReasonServiceTarget, msg: []string{"reaches 15000/TCP"}},
		{name: "update: Warn on 15000 does not mask Deny on 15000", policies: []*Policy{denyCore, warn15000},
			req: update(service("admin", selector("app", "cart", "tier", "edge"), servicePort(80, targetPort(15000))),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(15000)))),
			cluster: Cluster{Pods: views(cart("cart-edge", withLabels("tier", "edge")), cart("cart-core", withLabels("tier", "core")))},
			want:    v1alpha1.ActionDeny, msg: []string{"pod cart-core; that port is declared loopback-only by LoopbackService shop/core"}},
		{name: "update: Warn on 15000 kept, ports added", policies: []*Policy{denyCore, warn15000},
			req: update(service("admin", selector("app", "cart", "tier", "edge"), servicePort(80, targetPort(15000))),
				service("admin", selector("app", "cart", "tier", "edge"), servicePort(80, targetPort(15000)), servicePort(81, targetPort(15000)))),
			cluster: Cluster{Pods: views(cart("cart-edge", withLabels("tier", "edge")), cart("cart-core", withLabels("tier", "core")))}},
		{name: "update: same exposure, other field (ports reordered, one added)", policies: []*Policy{deny, warn},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(15000))),
				service("admin", selector("app", "cart"), servicePort(8080, targetPort(8080)), servicePort(80, targetPort(15000)))),
			cluster: pods},
		{name: "update: a Warn exposure made a NodePort is new", policies: []*Policy{deny, warn},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(6060))),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(6060)), func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })),
			cluster: pods, want: v1alpha1.ActionWarn, reason: ReasonServiceTarget, msg: []string{"reaches 6060/TCP"}},
		{name: "update: a Warn exposure given an external IP is new", policies: []*Policy{deny, warn},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(6060))),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(6060)), func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.10"} })),
			cluster: pods, want: v1alpha1.ActionWarn, reason: ReasonServiceTarget},
		{name: "update: a Warn exposure narrowed from LoadBalancer to ClusterIP passes", policies: []*Policy{deny, warn},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(6060)), func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(6060)))),
			cluster: pods},
		{name: "update: a Warn exposure kept passes silently", policies: []*Policy{deny, warn},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(6060))),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(6060)), servicePort(81, targetPort(8080)))),
			cluster: pods},
		{name: "update: selector widened to reach another protected pod", policies: []*Policy{deny},
			req: update(service("admin", selector("app", "cart", "pod", "0"), servicePort(80, targetPort(15000))),
				service("admin", selector("app", "cart"), servicePort(80, targetPort(15000)))),
			cluster: Cluster{Pods: views(cart("cart-0", withLabels("pod", "0")), cart("cart-1"))}, want: v1alpha1.ActionDeny, msg: []string{"pods cart-0, cart-1"}},
		{name: "update: selector narrowed reaches no new pod", policies: []*Policy{deny},
			req: update(service("admin", selector("app", "cart"), servicePort(80, targetPort(15000))),
				service("admin", selector("app", "cart", "pod", "0"), servicePort(80, targetPort(15000)))),
			cluster: Cluster{Pods: views(cart("cart-0", withLabels("pod", "0")), cart("cart-1"))}},

		// Hole 6: a terminating object is judged like any other, and an
		// update that changes nothing the rules read still passes.
		{name: "terminating Service patched to a protected port", policies: []*Policy{deny},
			req: update(service("admin", deletingService(), selector("app", "cart"), servicePort(80, targetPort(8080))),
				service("admin", deletingService(), selector("app", "cart"), servicePort(80, targetPort(15000)))),
			cluster: pods, want: v1alpha1.ActionDeny, reason: ReasonServiceTarget},
		{name: "terminating Service that exposes: its finalizer removed", policies: []*Policy{deny},
			req: update(service("admin", deletingService(), selector("app", "cart"), servicePort(80, targetPort(15000))),
				service("admin", deletingService(), withFinalizers(), selector("app", "cart"), servicePort(80, targetPort(15000)))),
			cluster: pods},
		{name: "terminating pod that exposes: its finalizer removed", policies: []*Policy{deny},
			req:     update(cart("cart-0", terminating(), withContainer("envoy", port(15000))), cart("cart-0", terminating(), withContainer("envoy", port(15000)))),
			cluster: pods},

		// Hole 3: relabelled out of a policy.
		{name: "pod relabelled out of a Deny policy", policies: []*Policy{deny},
			req:  update(cart("cart-0", phase(corev1.PodRunning)), pod("cart-0", withLabels("app", "cart-debug"), withContainer("app", port(8080)), phase(corev1.PodRunning))),
			want: v1alpha1.ActionDeny, reason: ReasonLeavesProtection,
			msg: []string{`pod "cart-0" is protected by LoopbackService shop/envoy-admin`, "metadata.labels", "delete and recreate the pod with the new labels; a running pod keeps the sockets it opened under protection"}},
		{name: "pending pod relabelled out", policies: []*Policy{deny},
			req:  update(cart("cart-0"), pod("cart-0", withContainer("app", port(8080)))),
			want: v1alpha1.ActionDeny, reason: ReasonLeavesProtection},
		{name: "terminating pod relabelled out (it still runs)", policies: []*Policy{deny},
			req:  update(cart("cart-0", terminating()), pod("cart-0", terminating(), withLabels("app", "x"), withContainer("app", port(8080)))),
			want: v1alpha1.ActionDeny, reason: ReasonLeavesProtection},
		{name: "relabel that keeps the pod selected", policies: []*Policy{deny},
			req: update(cart("cart-0", phase(corev1.PodRunning)), cart("cart-0", phase(corev1.PodRunning), withLabels("version", "2")))},
		{name: "finished pod relabelled out", policies: []*Policy{deny},
			req: update(cart("cart-0", phase(corev1.PodSucceeded)), pod("cart-0", withLabels("app", "x"), phase(corev1.PodSucceeded)))},
		{name: "failed pod relabelled out", policies: []*Policy{deny},
			req: update(cart("cart-0", phase(corev1.PodFailed)), pod("cart-0", withLabels("app", "x"), phase(corev1.PodFailed)))},
		{name: "relabel out of a Warn policy warns", policies: []*Policy{warn},
			req:  update(cart("cart-0"), pod("cart-0", withLabels("app", "x"))),
			want: v1alpha1.ActionWarn, reason: ReasonLeavesProtection, msg: []string{"LoopbackService shop/debug"}},
		{name: "relabel out by an allowed group is recorded", policies: []*Policy{breakGlass},
			req:  as(update(cart("cart-0"), pod("cart-0", withLabels("app", "x"))), "bob", "sre"),
			want: v1alpha1.ActionAudit, reason: ReasonLeavesProtection},
		{name: "relabel out by an allowed user is recorded", policies: []*Policy{breakGlass},
			req:  as(update(cart("cart-0"), pod("cart-0", withLabels("app", "x"))), "alice"),
			want: v1alpha1.ActionAudit, reason: ReasonLeavesProtection},
		{name: "relabel out by someone else is refused", policies: []*Policy{breakGlass},
			req:  as(update(cart("cart-0"), pod("cart-0", withLabels("app", "x"))), "mallory", "dev"),
			want: v1alpha1.ActionDeny, reason: ReasonLeavesProtection},
		{name: "a workload's template relabelled out is not a running pod", policies: []*Policy{deny},
			req: update(deployment("cart", withLabels("app", "cart")), deployment("cart", withLabels("app", "x")))},

		// Hole 11: bounded answers and work.
		{name: "deadline passed", policies: []*Policy{deny},
			req:     cancelled(create(service("admin", selector("app", "cart"), servicePort(80, targetPort(15000))))),
			cluster: pods, want: v1alpha1.ActionDeny, reason: ReasonReviewIncomplete, msg: []string{`service "admin" is too large for loopguard to review`}},
		{name: "deadline passed where only Warn policies apply", policies: []*Policy{warn},
			req:     cancelled(create(service("admin", selector("app", "cart"), servicePort(80, targetPort(15000))))),
			cluster: pods, want: v1alpha1.ActionWarn, reason: ReasonReviewIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := review(shopEnv(tc.policies...), tc.req, tc.cluster)
			if d.Action != tc.want {
				t.Fatalf("action %q, want %q; findings:\n%s", d.Action, tc.want, messages(d.Findings))
			}
			if tc.want == "" {
				return
			}
			if tc.reason != "" && d.Findings[0].Reason != tc.reason {
				t.Errorf("reason %q, want %q", d.Findings[0].Reason, tc.reason)
			}
			text := d.Denial
			switch tc.want {
			case v1alpha1.ActionWarn:
				text = strings.Join(d.Warnings, "\n")
			case v1alpha1.ActionAudit:
				text = messages(d.Findings)
			}
			for _, m := range tc.msg {
				if !strings.Contains(text, m) {
					t.Errorf("message does not contain %q:\n%s", m, text)
				}
			}
		})
	}
}

func messages(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "[%s %s] %s\n", f.Action, f.Reason, f.Message())
	}
	return b.String()
}

// TestReviewBoundsItsAnswer: 500 ports to a protected port are one Deny
// with 20 messages and a count of the rest, and as many Warn findings are
// 20 warnings and one that counts the rest.
func TestReviewBoundsItsAnswer(t *testing.T) {
	env := shopEnv(nsPolicy(t, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000)),
		nsPolicy(t, testNamespace, "debug", podSelector("app", "cart"), protects(6000, through(6999)), enforce(v1alpha1.ActionWarn)))
	svc := service("admin", selector("app", "cart"), manyPorts(500, intstr.FromInt32(15000)))
	for i := range 300 {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("w%d", i), Port: int32(10000 + i), TargetPort: intstr.FromInt32(int32(6000 + i))})
	}
	cluster := Cluster{Pods: views(pod("cart-0", withLabels("app", "cart")))}
	d := review(env, ReviewRequest{Operation: OperationCreate, Object: svc}, cluster)
	if d.Action != v1alpha1.ActionDeny {
		t.Fatalf("action %q, want Deny", d.Action)
	}
	if len(d.Findings) != 2*maxReportedFindings || d.Omitted != 800-2*maxReportedFindings {
		t.Errorf("kept %d findings and omitted %d, want %d and %d", len(d.Findings), d.Omitted, 2*maxReportedFindings, 800-2*maxReportedFindings)
	}
	if !strings.HasPrefix(d.Denial, "500 loopback-only port exposures: (1) ") || !strings.HasSuffix(d.Denial, "; and 480 more exposures") {
		t.Errorf("denial does not count the rest: %.200s ... %s", d.Denial, d.Denial[max(0, len(d.Denial)-100):])
	}
	if strings.Count(d.Denial, "declared loopback-only") != maxReportedFindings {
		t.Errorf("denial has %d messages, want %d", strings.Count(d.Denial, "declared loopback-only"), maxReportedFindings)
	}
	if len(d.Warnings) != maxReportedFindings+1 || d.Warnings[maxReportedFindings] != "and 280 more loopback-only port exposures (Warn)" {
		t.Errorf("warnings: %d, last %q", len(d.Warnings), d.Warnings[len(d.Warnings)-1])
	}
	if len(d.Denial) > 16<<10 {
		t.Errorf("denial is %d bytes", len(d.Denial))
	}
}

// TestReviewStopsAtItsWorkLimit: a review that would exceed maxReviewWork
// ends in a ReviewIncomplete Deny instead of running on.
func TestReviewStopsAtItsWorkLimit(t *testing.T) {
	env := shopEnv(nsPolicy(t, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000)))
	const nPods = 1000
	var cluster Cluster
	for i := range nPods {
		cluster.Pods = append(cluster.Pods, podview.Of(pod(fmt.Sprintf("cart-%d", i), withLabels("app", "cart"))))
	}
	svc := service("admin", selector("app", "cart"), manyPorts(maxReviewWork/nPods+1, intstr.FromInt32(8080)))
	d := review(env, ReviewRequest{Operation: OperationCreate, Object: svc}, cluster)
	if d.Action != v1alpha1.ActionDeny || len(d.Findings) != 1 || d.Findings[0].Reason != ReasonReviewIncomplete {
		t.Fatalf("decision %q:\n%s", d.Action, messages(d.Findings))
	}
	// Half of it passes.
	svc = service("admin", selector("app", "cart"), manyPorts(maxReviewWork/nPods/2, intstr.FromInt32(8080)))
	if d := review(env, ReviewRequest{Operation: OperationCreate, Object: svc}, cluster); d.Action != "" {
		t.Fatalf("decision %q:\n%s", d.Action, messages(d.Findings))
	}
}

// TestReviewHostileNamedPorts: the named case of BenchmarkReviewHostile
// is reviewed completely (no ReviewIncomplete) and finds nothing.
func TestReviewHostileNamedPorts(t *testing.T) {
	env := shopEnv(nsPolicy(t, testNamespace, "envoy-admin", podSelector("app", "cart"), protects(15000)))
	for _, c := range hostileCases() {
		d := review(env, ReviewRequest{Operation: OperationUpdate, Object: c.svc, OldObject: c.old}, c.cluster)
		if d.Action != c.want {
			t.Errorf("%s: action %q, want %q:\n%s", c.name, d.Action, c.want, messages(d.Findings))
		}
		if c.want != "" && (d.Findings[0].Reason != ReasonServiceTarget || len(d.Denial) > 32<<10) {
			t.Errorf("%s: %s, %d bytes", c.name, d.Findings[0].Reason, len(d.Denial))
		}
	}
}

// review is Review with env and a Cluster, as most tables here write it.
func review(env *Env, req ReviewRequest, c Cluster) Decision {
	return Review(req, Snapshot{Env: env, Pods: c.Pods, Services: c.Services, Workloads: c.Workloads, Resolver: c.Resolver})
}
