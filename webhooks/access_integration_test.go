package webhooks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
)

// The requests kubectl exec, attach, debug and get --raw .../proxy make, as
// the given user. Admission runs before the API server looks for the pod's
// node or IP; these pods have neither, so a CONNECT that passes admission
// fails afterwards with another error. An ephemeral container is only
// written to the pod, so it succeeds.
func connect(t *testing.T, cfg *rest.Config, ns, resource, name, sub string, params ...string) error {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	verb := "POST"
	if sub == "proxy" {
		verb = "GET"
	}
	r := cs.CoreV1().RESTClient().Verb(verb).Namespace(ns).Resource(resource).Name(name).SubResource(sub)
	for i := 0; i+1 < len(params); i += 2 {
		r = r.Param(params[i], params[i+1])
	}
	return r.Do(context.Background()).Error()
}

func exec(t *testing.T, cfg *rest.Config, ns, pod string) error {
	return connect(t, cfg, ns, "pods", pod, "exec", "container", "app", "command", "true", "stdout", "true")
}

func attach(t *testing.T, cfg *rest.Config, ns, pod string) error {
	return connect(t, cfg, ns, "pods", pod, "attach", "container", "app", "stdout", "true")
}

func debug(t *testing.T, cfg *rest.Config, ns, pod, container string, dryRun bool) error {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	patch := fmt.Sprintf(`{"spec":{"ephemeralContainers":[{"name":%q,"image":"registry.invalid/debug:1"}]}}`, container)
	opts := metav1.PatchOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = cs.CoreV1().Pods(ns).Patch(context.Background(), pod, "application/strategic-merge-patch+json", []byte(patch), opts, "ephemeralcontainers")
	return err
}

// deniedBy reports whether err is the 403 of the named loopguard webhook.
func deniedBy(err error, webhook string) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), fmt.Sprintf("admission webhook %q denied the request", webhook))
}

// grantAccess lets the developers group exec, attach, debug and proxy in
// ns, as edit does.
func grantAccess(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Expect(env.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "access", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/attach", "pods/proxy", "services/proxy"}, Verbs: []string{"create", "get"}},
			{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch", "update"}},
		},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "developers-access", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "access"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "developers"}},
	})).To(Succeed())
}

// accessNotes returns the notes of the Events with this reason on the
// policy named policy.
func accessNotes(g Gomega, ns, policy, reason string) []string {
	var list eventsv1.EventList
	g.Expect(env.Client.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Reason == reason && e.Regarding.Name == policy {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

func TestAccessGuardAuditsByDefault(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	grantAccess(t, ns)
	guard(t, ns, "guard", v1alpha1.ActionDeny)
	g.Expect(env.Client.Create(ctx, pod(ns, "cart"))).To(Succeed())
	dev, err := env.AddUser("dev-dan", "developers")
	g.Expect(err).NotTo(HaveOccurred())

	// Audit admits: exec and attach fail after admission (no node), debug
	// is written to the pod.
	g.Eventually(func() []string {
		g.Expect(deniedBy(exec(t, dev, ns, "cart"), "exec.loopguard.io")).To(BeFalse())
		return accessNotes(g, ns, "guard", "Exec")
	}, 10*time.Second, 100*time.Millisecond).Should(ContainElement(fmt.Sprintf(`exec by "dev-dan" to pod %s/cart: audit`, ns)))
	g.Expect(deniedBy(attach(t, dev, ns, "cart"), "exec.loopguard.io")).To(BeFalse())
	g.Expect(debug(t, dev, ns, "cart", "dbg", false)).To(Succeed())
	g.Eventually(func() []string {
		return append(accessNotes(g, ns, "guard", "Attach"), accessNotes(g, ns, "guard", "Debug")...)
	}, 10*time.Second, 100*time.Millisecond).Should(ContainElements(
		fmt.Sprintf(`attach by "dev-dan" to pod %s/cart: audit`, ns),
		fmt.Sprintf(`debug by "dev-dan" to pod %s/cart: audit`, ns)))
	g.Expect(testutil.ToFloat64(metrics.PodAccess.WithLabelValues(ns, "exec", "audit"))).To(BeNumerically(">=", 1))
	g.Expect(testutil.ToFloat64(metrics.PodAccess.WithLabelValues(ns, "debug", "audit"))).To(BeNumerically(">=", 1))
}

func TestAccessGuardDeny(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	grantAccess(t, ns)
	deny := &v1alpha1.AccessSpec{Action: v1alpha1.AccessDeny, Allowed: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "sre-oncall"}}}
	guard(t, ns, "guard", v1alpha1.ActionDeny, func(l *v1alpha1.LoopbackService) { l.Spec.Exec, l.Spec.Debug = deny, deny })
	g.Expect(env.Client.Create(ctx, pod(ns, "cart"))).To(Succeed())
	g.Expect(env.Client.Create(ctx, pod(ns, "web", withLabels(map[string]string{"app": "web"})))).To(Succeed())
	dev, err := env.AddUser("dev-erin", "developers")
	g.Expect(err).NotTo(HaveOccurred())
	oncall, err := env.AddUser("sre-frank", "developers", "sre-oncall")
	g.Expect(err).NotTo(HaveOccurred())

	g.Eventually(func() error { return exec(t, dev, ns, "cart") }, 10*time.Second, 50*time.Millisecond).
		Should(MatchError(Equal(fmt.Sprintf(`admission webhook "exec.loopguard.io" denied the request: exec into pod %s/cart is refused: LoopbackService %s/guard declares ports of this pod loopback-only, and a process started in the pod reaches its loopback; ask for your user or group to be added to spec.exec.allowed`, ns, ns))))
	g.Expect(deniedBy(attach(t, dev, ns, "cart"), "exec.loopguard.io")).To(BeTrue())
	err = debug(t, dev, ns, "cart", "dbg", false)
	g.Expect(deniedBy(err, "debug.loopguard.io")).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("LoopbackService " + ns + "/guard"))

	dry, err := env.AddUser("dev-dry", "developers")
	g.Expect(err).NotTo(HaveOccurred())
	t.Run("a dry run is decided", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(deniedBy(debug(t, dry, ns, "cart", "dry", true), "debug.loopguard.io")).To(BeTrue())
	})
	t.Run("an allowed group passes and is recorded", func(t *testing.T) {
		g := NewWithT(t)
		err := exec(t, oncall, ns, "cart")
		g.Expect(err).To(HaveOccurred(), "no node runs the pod, so the request fails after admission")
		g.Expect(deniedBy(err, "exec.loopguard.io")).To(BeFalse(), "got %v", err)
		g.Expect(debug(t, oncall, ns, "cart", "oncall", false)).To(Succeed())
	})
	t.Run("an unprotected pod is untouched", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(deniedBy(exec(t, dev, ns, "web"), "exec.loopguard.io")).To(BeFalse())
		g.Expect(debug(t, dev, ns, "web", "dbg", false)).To(Succeed())
	})
	t.Run("recorded in Events and metrics", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(testutil.ToFloat64(metrics.PodAccess.WithLabelValues(ns, "exec", "deny"))).To(BeNumerically(">=", 1))
		g.Expect(testutil.ToFloat64(metrics.PodAccess.WithLabelValues(ns, "attach", "deny"))).To(BeNumerically(">=", 1))
		g.Expect(testutil.ToFloat64(metrics.PodAccess.WithLabelValues(ns, "debug", "deny"))).To(BeNumerically(">=", 2))
		g.Eventually(func() []string {
			var notes []string
			for _, r := range []string{"Exec", "Attach", "Debug"} {
				notes = append(notes, accessNotes(g, ns, "guard", r)...)
			}
			return notes
		}, 10*time.Second, 100*time.Millisecond).Should(ContainElements(
			fmt.Sprintf(`exec by "dev-erin" to pod %s/cart: deny`, ns),
			fmt.Sprintf(`attach by "dev-erin" to pod %s/cart: deny`, ns),
			fmt.Sprintf(`debug by "dev-erin" to pod %s/cart: deny`, ns),
			fmt.Sprintf(`exec by "sre-frank" to pod %s/cart: audit`, ns),
			fmt.Sprintf(`debug by "sre-frank" to pod %s/cart: audit`, ns)))
		// Recorded after the dry run, so the dry run's Event would be there.
		g.Expect(accessNotes(g, ns, "guard", "Debug")).NotTo(ContainElement(ContainSubstring(`"dev-dry"`)), "a dry run records no Event")
	})
}

func TestAccessGuardProxy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	grantAccess(t, ns)
	// Audit lets the Service exist (reported); the proxy answers to
	// spec.portForward, Deny by default.
	guard(t, ns, "guard", v1alpha1.ActionAudit)
	g.Expect(env.Client.Create(ctx, pod(ns, "cart"))).To(Succeed())
	g.Expect(env.Client.Create(ctx, service(ns, "admin", map[string]string{"app": "cart"}, 80, intstr.FromInt32(15000)))).To(Succeed())
	g.Expect(env.Client.Create(ctx, service(ns, "web", map[string]string{"app": "cart"}, 80, intstr.FromInt32(8080)))).To(Succeed())
	dev, err := env.AddUser("dev-gina", "developers")
	g.Expect(err).NotTo(HaveOccurred())

	g.Eventually(func() error { return connect(t, dev, ns, "pods", "cart:15000", "proxy") }, 10*time.Second, 50*time.Millisecond).
		Should(MatchError(Equal(fmt.Sprintf(`admission webhook "proxy.loopguard.io" denied the request: proxy to port 15000 of pod %[1]s/cart is refused: LoopbackService %[1]s/guard declares this port loopback-only, and the API server's proxy reaches it on the pod IP past every NetworkPolicy; use a port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed`, ns))))
	for _, name := range []string{"https:cart:15000", "cart:6061"} {
		err := connect(t, dev, ns, "pods", name, "proxy")
		g.Expect(deniedBy(err, "proxy.loopguard.io")).To(BeTrue(), "pods/%s/proxy: %v", name, err)
	}
	g.Eventually(func() error { return connect(t, dev, ns, "services", "admin:80", "proxy") }, 10*time.Second, 50*time.Millisecond).
		Should(MatchError(ContainSubstring(fmt.Sprintf(`proxy through service %[1]s/admin to port 15000 of pod %[1]s/cart is refused: LoopbackService %[1]s/guard`, ns))))
	g.Expect(deniedBy(connect(t, dev, ns, "services", "admin:p", "proxy"), "proxy.loopguard.io")).To(BeTrue())

	for _, c := range []struct{ resource, name string }{{"pods", "cart:8080"}, {"pods", "cart"}, {"services", "web:80"}} {
		err := connect(t, dev, ns, c.resource, c.name, "proxy")
		g.Expect(deniedBy(err, "proxy.loopguard.io")).To(BeFalse(), "%s/%s/proxy: %v", c.resource, c.name, err)
	}
	g.Eventually(func() []string {
		return append(accessNotes(g, ns, "guard", "Proxy"), accessNotes(g, ns, "guard", "ServiceProxy")...)
	}, 10*time.Second, 100*time.Millisecond).Should(ContainElements(
		fmt.Sprintf(`proxy by "dev-gina" to pod %s/cart port 15000: deny`, ns),
		fmt.Sprintf(`proxy by "dev-gina" to pod %[1]s/cart port 15000 through service %[1]s/admin: deny`, ns)))
	g.Expect(testutil.ToFloat64(metrics.PodAccess.WithLabelValues(ns, "proxy", "deny"))).To(BeNumerically(">=", 5))
}
