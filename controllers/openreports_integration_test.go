package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/controllers"
)

// reportResult is what the test reads of one result.
type reportResult struct {
	Policy, Rule, Result, Severity, Kind, Name string
}

func reportResults(g Gomega, ns string) func() []reportResult {
	return func() []reportResult {
		rep := &openreportsv1alpha1.Report{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: controllers.ReportName}, rep); apierrors.IsNotFound(err) {
			return nil
		} else {
			g.Expect(err).NotTo(HaveOccurred())
		}
		var out []reportResult
		for _, r := range rep.Results {
			g.Expect(r.Subjects).To(HaveLen(1))
			out = append(out, reportResult{r.Policy, r.Rule, string(r.Result), string(r.Severity), r.Subjects[0].Kind, r.Subjects[0].Name})
		}
		return out
	}
}

// deployment has no replicas and keeps no old ReplicaSet: a fix of its
// template leaves nothing with the old one behind.
func deployment(ns, name string, ports ...int32) *appsv1.Deployment {
	c := corev1.Container{Name: "envoy", Image: "registry.invalid/envoy"}
	for _, p := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p})
	}
	l := map[string]string{"app": "cart"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0), RevisionHistoryLimit: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}},
		},
	}
}

// TestOpenReport checks a namespace's Report on the real API server with the
// real OpenReports CRD: a Deny violation fails, a Warn one warns, a compliant
// protected pod passes each pod rule; fixing the workload turns its fail
// into a pass; a reconcile with nothing new writes nothing; deleting the
// policies removes the Report.
func TestOpenReport(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	web := deployment(ns, "web", 15000, 9901)
	g.Expect(env.Client.Create(ctx, web)).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "quiet", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app"}}},
	})).To(Succeed())
	deny := lbs(ns, "envoy-admin", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, deny)).To(Succeed())
	warn := lbs(ns, "envoy-stats", v1alpha1.LoopbackPort{Port: 9901})
	warn.Spec.EnforcementAction = v1alpha1.ActionWarn
	g.Expect(env.Client.Create(ctx, warn)).To(Succeed())

	results := reportResults(g, ns)
	denyName, warnName := ns+"/envoy-admin", ns+"/envoy-stats"
	g.Eventually(results, timeout, poll).Should(ContainElements(
		reportResult{denyName, "container-port", "fail", "high", "Deployment", "web"},
		reportResult{warnName, "container-port", "warn", "medium", "Deployment", "web"},
		reportResult{denyName, "host-port", "pass", "high", "Deployment", "web"},
		reportResult{denyName, "container-port", "pass", "high", "Pod", "quiet"},
		reportResult{denyName, "host-port", "pass", "high", "Pod", "quiet"},
		reportResult{denyName, "host-network", "pass", "high", "Pod", "quiet"},
		reportResult{warnName, "container-port", "pass", "medium", "Pod", "quiet"},
	))
	// Until each policy's managed NetworkPolicy closes the other's port
	// too (the overlap reconcile), each re-opens the other's: a transient
	// networkpolicy-conflict result the Report shows while it lasts.
	rep := &openreportsv1alpha1.Report{}
	g.Eventually(func() openreportsv1alpha1.ReportSummary {
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: controllers.ReportName}, rep)).To(Succeed())
		return rep.Summary
	}, timeout, poll).Should(And(HaveField("Fail", 1), HaveField("Warn", 1)))
	g.Expect(rep.Summary.Pass).To(Equal(len(rep.Results) - 2))
	g.Expect(rep.Source).To(Equal("loopguard"))
	g.Expect(rep.Results[0].Description).To(ContainSubstring("15000"))
	g.Expect(rep.Results[0].Properties).To(HaveKeyWithValue("field", "spec.template.spec.containers[0].ports[0].containerPort"))

	// Fixing the workload: its fail becomes a pass within seconds.
	g.Expect(env.Change(ctx, web, func() { web.Spec.Template.Spec.Containers[0].Ports = nil })).To(Succeed())
	g.Eventually(results, timeout, poll).Should(And(
		ContainElements(
			reportResult{denyName, "container-port", "pass", "high", "Deployment", "web"},
			reportResult{warnName, "container-port", "pass", "medium", "Deployment", "web"},
		),
		Not(ContainElement(HaveField("Result", "fail"))),
		Not(ContainElement(HaveField("Result", "warn"))),
	))

	// Nothing new: a reconcile runs and writes nothing.
	g.Eventually(func() openreportsv1alpha1.ReportSummary {
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: controllers.ReportName}, rep)).To(Succeed())
		return rep.Summary
	}, timeout, poll).Should(Equal(openreportsv1alpha1.ReportSummary{Pass: 12}), "two policies: three pod rules each for the Deployment and the pod")
	rv := rep.ResourceVersion
	before := reconciles(g, controllers.OpenReportsControllerName)
	g.Expect(env.Client.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	})).To(Succeed())
	g.Eventually(func() float64 { return reconciles(g, controllers.OpenReportsControllerName) }, timeout, poll).
		Should(BeNumerically(">", before), "no report reconcile ran after the Service was created")
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(rep), rep)).To(Succeed())
	g.Expect(rep.ResourceVersion).To(Equal(rv), "the reconcile rewrote an unchanged Report")

	// Deleting one policy removes its results; deleting the last, the Report.
	g.Expect(env.Client.Delete(ctx, warn)).To(Succeed())
	g.Eventually(results, timeout, poll).ShouldNot(ContainElement(HaveField("Policy", warnName)))
	g.Expect(results()).To(ContainElement(HaveField("Policy", denyName)))
	g.Expect(env.Client.Delete(ctx, deny)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(rep), &openreportsv1alpha1.Report{}))
	}, timeout, poll).Should(BeTrue(), "the Report outlived the namespace's last policy")
}

// TestOpenReportUnexpectedClient checks an unexpected client that the
// runtime view found (here, a port-forward: outside the pod's containers)
// is an unexpected-client result on the pod in the namespace's Report,
// failing under Deny, and that it goes when the client does.
func TestOpenReportUnexpectedClient(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	node := ns + "-node"
	policy := lbs(ns, "envoy-admin", v1alpha1.LoopbackPort{Port: 15000})
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	pod := runningPod(g, ns, "cart-1", node, false)
	writeReport(g, node, time.Now(), clientsReport(pod,
		v1alpha1.BindClient{Port: 15000, Container: "app", Process: "curl"},
		v1alpha1.BindClient{Port: 15000, Outside: true, Process: "containerd"}))

	results := reportResults(g, ns)
	want := reportResult{ns + "/envoy-admin", "unexpected-client", "fail", "critical", "Pod", "cart-1"}
	g.Eventually(results, timeout, poll).Should(ContainElement(want))
	rep := &openreportsv1alpha1.Report{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: controllers.ReportName}, rep)).To(Succeed())
	for _, r := range rep.Results {
		if r.Rule == "unexpected-client" {
			g.Expect(r.Description).To(Equal("pod " + ns + "/cart-1 on node " + node + ", port 15000/TCP: containerd outside the pod's containers is connected on loopback (a port-forward or a process of the node)"))
			g.Expect(r.Properties).To(And(HaveKeyWithValue("port", "15000"), HaveKeyWithValue("process", "containerd"),
				HaveKeyWithValue("outside", "true"), HaveKeyWithValue("field", "spec.ports[0].clients"), HaveKeyWithValue("reason", "UnexpectedClient")))
		}
	}

	// The port-forward ends: the result goes.
	writeReport(g, node, time.Now(), clientsReport(pod, v1alpha1.BindClient{Port: 15000, Container: "app", Process: "curl"}))
	g.Eventually(results, timeout, poll).ShouldNot(ContainElement(HaveField("Rule", "unexpected-client")))
	g.Expect(results()).To(ContainElement(HaveField("Rule", "container-port")), "the Report is still there, with its other results")
}

// TestOpenReportImpostorIsReplaced: a tenant writes, before any policy
// applies to its namespace, a Report of loopguard's name saying all is
// well, scoped to one object and owned by one of its own, with or without
// loopguard's label. Once a policy applies, the Report of that name must
// hold loopguard's findings and nothing of the tenant's: a dashboard
// reading the namespace's loopguard Report must not read a forgery. Where
// the policy has nothing to report, the forgery goes.
func TestOpenReportImpostorIsReplaced(t *testing.T) {
	for _, tc := range []struct {
		name        string
		label, pods bool
	}{
		{"unlabelled", false, true},
		{"with loopguard's label", true, true},
		{"where the policy has no results", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns := namespace(t, nil)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"}}
			g.Expect(env.Client.Create(ctx, cm)).To(Succeed())
			fake := &openreportsv1alpha1.Report{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ReportName,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "mine", UID: cm.UID}}},
				Source:  "loopguard",
				Scope:   &corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "web"},
				Summary: openreportsv1alpha1.ReportSummary{Pass: 1},
				Results: []openreportsv1alpha1.ReportResult{{
					Source: "loopguard", Policy: ns + "/envoy-admin", Rule: "container-port", Result: "pass",
					Subjects: []corev1.ObjectReference{{Kind: "Deployment", Namespace: ns, Name: "web"}},
				}},
			}
			if tc.label {
				fake.Labels = map[string]string{"app.kubernetes.io/managed-by": "loopguard"}
			}
			g.Expect(env.Client.Create(ctx, fake)).To(Succeed())
			if tc.pods {
				g.Expect(env.Client.Create(ctx, deployment(ns, "web", 15000))).To(Succeed())
			}
			g.Expect(env.Client.Create(ctx, lbs(ns, "envoy-admin", v1alpha1.LoopbackPort{Port: 15000}))).To(Succeed())

			if !tc.pods {
				g.Eventually(func() bool {
					return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(fake), &openreportsv1alpha1.Report{}))
				}, timeout, poll).Should(BeTrue(), "the forged Report stays where a policy applies")
				return
			}
			g.Eventually(reportResults(g, ns), timeout, poll).Should(ContainElement(
				reportResult{ns + "/envoy-admin", "container-port", "fail", "high", "Deployment", "web"}),
				"the tenant's Report of loopguard's name still says the Deployment passes")
			rep := &openreportsv1alpha1.Report{}
			g.Eventually(func(g Gomega) {
				g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(fake), rep)).To(Succeed())
				g.Expect(rep.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "loopguard"))
				g.Expect(rep.Scope).To(BeNil(), "the tenant's scope stayed")
				g.Expect(rep.OwnerReferences).To(BeEmpty(), "the tenant's owner stayed")
			}, timeout, poll).Should(Succeed())
		})
	}
}
