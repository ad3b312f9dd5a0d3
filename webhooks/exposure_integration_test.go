package webhooks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
)

// TestDenyEveryKind creates, through the real API server, one object of
// every kind the webhook judges and checks the message a kubectl user sees.
func TestDenyEveryKind(t *testing.T) {
	ns := namespace(t, nil)
	guard(t, ns, "guard", v1alpha1.ActionDeny)
	policy := "LoopbackService " + ns + "/guard"
	labels := map[string]string{"app": "cart"}
	tmpl := podTemplate(ns, 15000)
	sel := &metav1.LabelSelector{MatchLabels: labels}
	wantTmpl := func(kind, name, path string) string {
		return fmt.Sprintf(`%s %q container "envoy": port 15000/TCP at %s.containers[1].ports[0].containerPort is declared loopback-only by %s; remove the containerPort (the container must bind 127.0.0.1)`, kind, name, path, policy)
	}

	cases := []struct {
		name    string
		obj     client.Object
		message string // exact denial text after the API server's prefix
	}{
		{"pod container", pod(ns, "cart-7d9", withContainerPort("envoy", 15000, "")),
			fmt.Sprintf(`pod "cart-7d9" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by %s; remove the containerPort (the container must bind 127.0.0.1)`, policy)},
		{"pod init container in range", pod(ns, "init", withInitPort("warmup", 6065, false)),
			fmt.Sprintf(`pod "init" init container "warmup": port 6065/TCP at spec.initContainers[0].ports[0].containerPort is declared loopback-only by %s; remove the containerPort (the init container must bind 127.0.0.1)`, policy)},
		{"pod native sidecar", pod(ns, "sidecar", withInitPort("envoy", 15000, true)),
			fmt.Sprintf(`pod "sidecar" sidecar container "envoy": port 15000/TCP at spec.initContainers[0].ports[0].containerPort is declared loopback-only by %s; remove the containerPort (the sidecar must bind 127.0.0.1)`, policy)},
		{"pod UDP", pod(ns, "udp", withContainerPort("dns", 5353, corev1.ProtocolUDP)),
			fmt.Sprintf(`pod "udp" container "dns": port 5353/UDP at spec.containers[1].ports[0].containerPort is declared loopback-only by %s; remove the containerPort (the container must bind 127.0.0.1)`, policy)},
		{"pod hostPort", pod(ns, "hostport", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 15000, HostPort: 31500}}
		}), fmt.Sprintf(`pod "hostport" container "app": port 15000/TCP at spec.containers[0].ports[0].containerPort, published on the node by hostPort 31500 at spec.containers[0].ports[0].hostPort, is declared loopback-only by %s; remove the containerPort and its hostPort (the container must bind 127.0.0.1)`, policy)},
		{"pod hostNetwork", pod(ns, "hostnet", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			fmt.Sprintf(`pod "hostnet" uses the node's network (hostNetwork: true at spec.hostNetwork), so its loopback-only ports 15000/TCP, 6060-6069/TCP, 5353/UDP, declared by %s, live on the node's loopback, shared with every hostNetwork pod and node process, and no NetworkPolicy applies; set hostNetwork: false`, policy)},
		{"deployment", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}, wantTmpl("deployment", "cart", "spec.template.spec")},
		{"replicaset", &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}}, wantTmpl("replicaset", "cart", "spec.template.spec")},
		{"statefulset", &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}}, wantTmpl("statefulset", "cart", "spec.template.spec")},
		{"daemonset", &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, wantTmpl("daemonset", "cart", "spec.template.spec")},
		{"job", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: batchv1.JobSpec{Template: jobTemplate(tmpl)}}, wantTmpl("job", "cart", "spec.template.spec")},
		{"cronjob", &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: batchv1.CronJobSpec{Schedule: "@hourly", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate(tmpl)}}}},
			wantTmpl("cronjob", "cart", "spec.jobTemplate.spec.template.spec")},
		{"replicationcontroller", &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns},
			Spec: corev1.ReplicationControllerSpec{Selector: labels, Template: &tmpl}}, wantTmpl("replicationcontroller", "cart", "spec.template.spec")},
		{"service numeric targetPort", service(ns, "num", labels, 80, intstr.FromInt32(15000)),
			fmt.Sprintf(`service "num" port "p" (80) at spec.ports[0].targetPort targets port 15000, which reaches 15000/TCP on every pod its selector can select; that port is declared loopback-only by %s; target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod`, policy)},
		// The API server defaults targetPort to port before admission, so
		// the webhook sees it set; files checked by the CLI may leave it unset.
		{"service defaulted targetPort", service(ns, "def", labels, 6061, intstr.IntOrString{}),
			fmt.Sprintf(`service "def" port "p" (6061) at spec.ports[0].targetPort targets port 6061, which reaches 6061/TCP on every pod its selector can select; that port is declared loopback-only by %s; target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod`, policy)},
		{"service named targetPort", service(ns, "named", labels, 80, intstr.FromString("envoy-admin")),
			fmt.Sprintf(`service "named" port "p" (80) at spec.ports[0].targetPort targets the port named "envoy-admin", which reaches 15000/TCP on every pod its selector can select; that port is declared loopback-only by %s; target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod`, policy)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c, _ := userClient(t)
			err := c.Create(context.Background(), tc.obj)
			g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403, got %v", err)
			g.Expect(err.Error()).To(Equal(`admission webhook "` + webhookName(tc.obj) + `" denied the request: ` + tc.message))
		})
	}
}

func jobTemplate(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return t
}

func webhookName(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Pod:
		return "pods.loopguard.io"
	case *corev1.Service:
		return "services.loopguard.io"
	case *corev1.ReplicationController:
		return "replicationcontrollers.loopguard.io"
	}
	return "workloads.loopguard.io"
}

// TestAllowed checks what must pass: unprotected labels, protocol
// mismatch, ports outside the ranges, and Services that cannot reach a
// protected pod.
func TestAllowed(t *testing.T) {
	ns := namespace(t, nil)
	guard(t, ns, "guard", v1alpha1.ActionDeny)
	cases := []struct {
		name string
		obj  client.Object
	}{
		{"other labels", pod(ns, "other", withLabels(map[string]string{"app": "web"}), withContainerPort("envoy", 15000, ""))},
		{"TCP on a UDP-only port", pod(ns, "tcp5353", withContainerPort("dns", 5353, corev1.ProtocolTCP))},
		{"port after the range", pod(ns, "p6070", withContainerPort("debug", 6070, ""))},
		{"service to an open port", service(ns, "web", map[string]string{"app": "cart"}, 80, intstr.FromInt32(8080))},
		{"service that cannot select protected pods", service(ns, "other", map[string]string{"role": "x"}, 80, intstr.FromInt32(15000))},
		{"selector-less service", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 15000}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, w := userClient(t)
			NewWithT(t).Expect(c.Create(context.Background(), tc.obj)).To(Succeed())
			NewWithT(t).Expect(w.take()).To(BeEmpty())
		})
	}
}

// TestModes checks Warn (admitted, warning printed), Audit (admitted
// silently), the strictest of several policies, and server-side dry-run.
func TestModes(t *testing.T) {
	t.Run("warn", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t, nil)
		guard(t, ns, "soft", v1alpha1.ActionWarn)
		c, w := userClient(t)
		g.Expect(c.Create(context.Background(), pod(ns, "p", withContainerPort("envoy", 15000, "")))).To(Succeed())
		g.Expect(w.take()).To(ConsistOf(fmt.Sprintf(`pod "p" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by LoopbackService %s/soft; remove the containerPort (the container must bind 127.0.0.1)`, ns)))
		g.Expect(testutil.ToFloat64(metrics.AdmissionDecisions.WithLabelValues("Pod", "CREATE", ns, "warn"))).To(Equal(1.0))
	})
	t.Run("audit", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t, nil)
		guard(t, ns, "quiet", v1alpha1.ActionAudit)
		c, w := userClient(t)
		g.Expect(c.Create(context.Background(), pod(ns, "p", withContainerPort("envoy", 15000, "")))).To(Succeed())
		g.Expect(w.take()).To(BeEmpty())
		g.Expect(testutil.ToFloat64(metrics.AdmissionDecisions.WithLabelValues("Pod", "CREATE", ns, "audit"))).To(Equal(1.0),
			"an Audit decision is recorded even though nothing is shown to the user")
	})
	t.Run("strictest wins and every policy is named", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t, nil)
		guard(t, ns, "a-warn", v1alpha1.ActionWarn)
		guard(t, ns, "b-deny", v1alpha1.ActionDeny)
		c, _ := userClient(t)
		err := c.Create(context.Background(), pod(ns, "p", withContainerPort("envoy", 15000, "")))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("declared loopback-only by LoopbackService %s/a-warn and LoopbackService %s/b-deny;", ns, ns)))
	})
	t.Run("server-side dry-run is judged the same", func(t *testing.T) {
		g := NewWithT(t)
		ns := namespace(t, nil)
		guard(t, ns, "guard", v1alpha1.ActionDeny)
		c, _ := userClient(t)
		err := c.Create(context.Background(), pod(ns, "p", withContainerPort("envoy", 15000, "")), client.DryRunAll)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(ContainSubstring(`pod "p" container "envoy": port 15000/TCP`))
		g.Expect(testutil.ToFloat64(metrics.AdmissionDecisions.WithLabelValues("Pod", "CREATE", ns, "deny"))).To(Equal(1.0))
		g.Expect(testutil.CollectAndCount(metrics.AdmissionDuration)).To(BeNumerically(">", 0))
	})
}

// TestRaces covers changes that make existing objects expose a port: a
// label update that brings a pod under a policy, a Service created for an
// existing protected pod, and a pod created for an existing Service.
func TestRaces(t *testing.T) {
	ns := namespace(t, nil)
	guard(t, ns, "guard", v1alpha1.ActionDeny)
	ctx := context.Background()

	t.Run("label change brings a pod under the policy", func(t *testing.T) {
		g := NewWithT(t)
		c, _ := userClient(t)
		p := pod(ns, "relabel", withLabels(map[string]string{"app": "web"}), withContainerPort("envoy", 15000, ""))
		g.Expect(c.Create(ctx, p)).To(Succeed())
		p.Labels = map[string]string{"app": "cart"}
		err := c.Update(ctx, p)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		g.Expect(err.Error()).To(ContainSubstring(`pod "relabel" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort`))
		// An update that changes nothing relevant passes: the audit, not
		// admission, reports what already exists.
		var fresh corev1.Pod
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(p), &fresh)).To(Succeed())
		fresh.Annotations = map[string]string{"touched": "yes"}
		g.Expect(c.Update(ctx, &fresh)).To(Succeed())
	})

	t.Run("service created for an existing protected pod", func(t *testing.T) {
		g := NewWithT(t)
		c, _ := userClient(t)
		g.Expect(c.Create(ctx, pod(ns, "existing", withLabels(map[string]string{"app": "cart", "tier": "api"})))).To(Succeed())
		svc := service(ns, "by-tier", map[string]string{"tier": "api"}, 80, intstr.FromInt32(6062))
		g.Eventually(func() string {
			err := c.Create(ctx, svc.DeepCopy(), client.DryRunAll)
			if err == nil {
				return ""
			}
			return err.Error()
		}, 10*time.Second, 50*time.Millisecond).Should(ContainSubstring(`which reaches 6062/TCP on pod existing;`))
	})

	t.Run("service for a deployment scaled to zero", func(t *testing.T) {
		// The port exists only in the template and the Service selects
		// more than the policy does: only the template says it is protected.
		g := NewWithT(t)
		c, _ := userClient(t)
		tmpl := podTemplate(ns, 8080)
		tmpl.Labels = map[string]string{"app": "cart", "tier": "idle"}
		tmpl.Spec.Containers[1].Ports = []corev1.ContainerPort{{Name: "admin", ContainerPort: 6066}}
		// 6066 is protected, so the Deployment itself is refused; the audit
		// would report one that was there before the policy.
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "idle", Namespace: ns},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl}}
		g.Expect(env.Client.Create(ctx, d)).NotTo(Succeed(), "a protected containerPort in a template is refused")
		// Created with the policy in Audit for a moment, as an existing one.
		auditOnly(t, ns, "guard", func() { g.Expect(env.Client.Create(ctx, d)).To(Succeed()) })
		svc := service(ns, "idle-admin", map[string]string{"tier": "idle"}, 80, intstr.FromString("admin"))
		g.Eventually(func() string {
			err := c.Create(ctx, svc.DeepCopy(), client.DryRunAll)
			if err == nil {
				return ""
			}
			return err.Error()
		}, 10*time.Second, 50*time.Millisecond).Should(ContainSubstring(`targets the port named "admin", which reaches 6066/TCP on the pods of deployment idle;`))
	})

	t.Run("pod created for an existing service", func(t *testing.T) {
		g := NewWithT(t)
		c, _ := userClient(t)
		g.Expect(c.Create(ctx, service(ns, "admin", map[string]string{"role": "admin"}, 9000, intstr.FromInt32(15000)))).To(Succeed())
		p := pod(ns, "newcomer", withLabels(map[string]string{"app": "cart", "role": "admin"}))
		g.Eventually(func() string {
			err := c.Create(ctx, p.DeepCopy(), client.DryRunAll)
			if err == nil {
				return ""
			}
			return err.Error()
		}, 10*time.Second, 50*time.Millisecond).Should(Equal(fmt.Sprintf(
			`admission webhook "pods.loopguard.io" denied the request: pod "newcomer" is selected by service "admin", whose port "p" (9000) at spec.ports[0].targetPort targets port 15000 and so reaches 15000/TCP on this pod; that port is declared loopback-only by LoopbackService %s/guard; change the labels at metadata.labels so the Service does not select the pod, or fix the Service`, ns)))
	})
}

// TestClusterPolicy checks a ClusterLoopbackService applies only in the
// namespaces its selector selects.
func TestClusterPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	in := namespace(t, map[string]string{"loopguard-test/enforce": "true"})
	out := namespace(t, nil)
	clbs := &v1alpha1.ClusterLoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-" + in},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"loopguard-test/enforce": "true"}},
			LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{
				PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}},
				Ports:       []v1alpha1.LoopbackPort{{Port: 8126}},
			},
		},
	}
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(ctx, clbs) })
	env.WaitEnforced(t, clbs)
	c, _ := userClient(t)
	g.Eventually(func() error {
		return c.Create(ctx, pod(in, "agent", withContainerPort("agent", 8126, "")), client.DryRunAll)
	}, 10*time.Second, 50*time.Millisecond).Should(MatchError(ContainSubstring("declared loopback-only by ClusterLoopbackService platform-" + in)))
	g.Expect(c.Create(ctx, pod(out, "agent", withContainerPort("agent", 8126, "")), client.DryRunAll)).To(Succeed())
}

// auditOnly runs fn while the policy ns/name is in Audit mode, then puts
// it back to Deny, waiting each time until the webhook's index has it.
func auditOnly(t *testing.T, ns, name string, fn func()) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	set := func(a v1alpha1.EnforcementAction) {
		var lbs v1alpha1.LoopbackService
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &lbs)).To(Succeed())
		patch := client.MergeFrom(lbs.DeepCopy()) // no resourceVersion: status writes do not conflict
		lbs.Spec.EnforcementAction = a
		g.Expect(env.Client.Patch(ctx, &lbs, patch)).To(Succeed())
		g.Eventually(func() bool {
			for _, s := range env.Index.Env(ns).Sets {
				for _, p := range s.Policies() {
					if p.Ref.Name == name && p.Generation == lbs.Generation {
						return true
					}
				}
			}
			return false
		}, 10*time.Second, 20*time.Millisecond).Should(BeTrue())
	}
	set(v1alpha1.ActionAudit)
	defer set(v1alpha1.ActionDeny)
	fn()
}

// TestHandWrittenEndpoints: a Service without a selector routes to what
// its hand-written EndpointSlice or Endpoints list, so those are judged
// like a Service: refused when they reach a protected port of a pod that a
// policy selects (matched by targetRef, or by pod IP).
func TestHandWrittenEndpoints(t *testing.T) {
	ns := namespace(t, nil)
	guard(t, ns, "guard", v1alpha1.ActionDeny)
	ctx := context.Background()
	g := NewWithT(t)
	c, _ := userClient(t)
	p := pod(ns, "target", withLabels(map[string]string{"app": "cart"}))
	g.Expect(c.Create(ctx, p)).To(Succeed())
	p.Status.PodIP, p.Status.PodIPs = "10.244.0.77", []corev1.PodIP{{IP: "10.244.0.77"}}
	g.Expect(env.Client.Status().Update(ctx, p)).To(Succeed())

	slice := func(port int32, ep discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "manual", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "manual"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(port)}},
			Endpoints:   []discoveryv1.Endpoint{ep},
		}
	}
	byIP := discoveryv1.Endpoint{Addresses: []string{"10.244.0.77"}}
	byRef := discoveryv1.Endpoint{Addresses: []string{"10.244.0.200"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "target"}}
	refused := func(obj client.Object) string {
		err := c.Create(ctx, obj, client.DryRunAll)
		if err == nil {
			return "admitted"
		}
		return err.Error()
	}
	// The pod IP reaches the webhook's cache through a watch: eventually.
	g.Eventually(func() string { return refused(slice(15000, byIP)) }, 10*time.Second, 50*time.Millisecond).Should(Equal(fmt.Sprintf(
		`admission webhook "endpoints.loopguard.io" denied the request: endpointslice "manual" routes port 15000/TCP at ports[0].port to pod "target" (endpoints[0].addresses[0] 10.244.0.77); that port is declared loopback-only by LoopbackService %s/guard; remove the address or the port (a Service without a selector exposes what its endpoints list)`, ns)))
	g.Expect(refused(slice(6061, byRef))).To(ContainSubstring(`routes port 6061/TCP at ports[0].port to pod "target" (endpoints[0].addresses[0] 10.244.0.200)`))
	g.Expect(c.Create(ctx, slice(8080, byIP), client.DryRunAll)).To(Succeed(), "an unprotected port")

	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: ns},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.77"}}, Ports: []corev1.EndpointPort{{Port: 15000}}}}}
	g.Expect(refused(eps)).To(ContainSubstring(`admission webhook "endpoints.loopguard.io" denied the request: endpoints "manual" routes port 15000/TCP at subsets[0].ports[0].port to pod "target"`))

	// A targetRef to another pod does not hide the pod that owns the IP.
	web := pod(ns, "web", withLabels(map[string]string{"app": "web"}))
	g.Expect(c.Create(ctx, web)).To(Succeed())
	spoof := discoveryv1.Endpoint{Addresses: []string{"10.244.0.77"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web"}}
	g.Expect(refused(slice(15000, spoof))).To(ContainSubstring(`to pod "target" (endpoints[0].addresses[0] 10.244.0.77)`))

	// A namespace where no policy applies: its slices are judged by the
	// policies of the pods they reach (CVE-2021-25740).
	other := namespace(t, nil)
	for _, ep := range []discoveryv1.Endpoint{byIP, {Addresses: []string{"10.244.0.200"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "target"}}} {
		s := slice(15000, ep)
		s.Namespace = other
		g.Expect(refused(s)).To(ContainSubstring(`endpointslice "manual" routes port 15000/TCP at ports[0].port to pod "` + ns + `/target"`))
	}
	s := slice(8080, byIP)
	s.Namespace = other
	g.Expect(c.Create(ctx, s, client.DryRunAll)).To(Succeed(), "an unprotected port, from another namespace")
}
