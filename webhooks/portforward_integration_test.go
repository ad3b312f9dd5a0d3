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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
)

// portForward POSTs to pods/<name>/portforward as the given user, the
// request kubectl port-forward makes. Admission runs before the API server
// looks for the pod's node; these pods have none, so a request that passes
// admission fails afterwards with another error.
func portForward(t *testing.T, cfg *rest.Config, ns, pod string) error {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("portforward").
		Param("ports", "8080").Do(context.Background()).Error()
}

// isLoopguardDenial reports whether err is the port-forward guard's 403.
func isLoopguardDenial(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), `admission webhook "portforward.loopguard.io" denied the request`)
}

// developers may port-forward in the namespace, as RBAC goes.
func grantPortForward(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Expect(env.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "port-forward", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/portforward"}, Verbs: []string{"create", "get"}},
		},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "developers", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "port-forward"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "developers"}},
	})).To(Succeed())
}

func TestPortForwardGuard(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t, nil)
	grantPortForward(t, ns)
	guard(t, ns, "guard", v1alpha1.ActionDeny, func(l *v1alpha1.LoopbackService) {
		l.Spec.PortForward = &v1alpha1.PortForwardSpec{Allowed: []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "sre-oncall"}}}
	})
	g.Expect(env.Client.Create(ctx, pod(ns, "cart"))).To(Succeed())
	g.Expect(env.Client.Create(ctx, pod(ns, "web", withLabels(map[string]string{"app": "web"})))).To(Succeed())

	dev, err := env.AddUser("dev-alice", "developers")
	g.Expect(err).NotTo(HaveOccurred())
	oncall, err := env.AddUser("sre-bob", "developers", "sre-oncall")
	g.Expect(err).NotTo(HaveOccurred())

	// The pod reaches the cache asynchronously; until then the guard lets
	// the request through (the kubelet cannot forward to an unknown pod).
	g.Eventually(func() error { return portForward(t, dev, ns, "cart") }, 10*time.Second, 50*time.Millisecond).
		Should(MatchError(Equal(fmt.Sprintf(`admission webhook "portforward.loopguard.io" denied the request: port-forward to pod %s/cart is refused: LoopbackService %s/guard declares ports of this pod loopback-only, and a port-forward reaches the pod's loopback whatever ports it names; use a Service port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed`, ns, ns))))
	// kubectl calls twice (WebSocket, then SPDY): the same answer.
	g.Expect(isLoopguardDenial(portForward(t, dev, ns, "cart"))).To(BeTrue())

	t.Run("an allowed group gets past admission", func(t *testing.T) {
		err := portForward(t, oncall, ns, "cart")
		NewWithT(t).Expect(err).To(HaveOccurred(), "no node runs the pod, so the request fails after admission")
		NewWithT(t).Expect(isLoopguardDenial(err)).To(BeFalse(), "got %v", err)
	})
	t.Run("an unprotected pod is untouched", func(t *testing.T) {
		err := portForward(t, dev, ns, "web")
		NewWithT(t).Expect(isLoopguardDenial(err)).To(BeFalse(), "got %v", err)
	})
	t.Run("recorded in Events and metrics", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(testutil.ToFloat64(metrics.PortForwards.WithLabelValues(ns, "deny"))).To(BeNumerically(">=", 2))
		g.Expect(testutil.ToFloat64(metrics.PortForwards.WithLabelValues(ns, "audit"))).To(BeNumerically(">=", 1))
		g.Eventually(func() []string {
			var list eventsv1.EventList
			g.Expect(env.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var notes []string
			for _, e := range list.Items {
				if e.Reason == "PortForward" && e.Regarding.Name == "guard" {
					notes = append(notes, e.Note)
				}
			}
			return notes
		}, 10*time.Second, 100*time.Millisecond).Should(ContainElements(
			fmt.Sprintf(`port-forward by "dev-alice" to pod %s/cart: deny`, ns),
			fmt.Sprintf(`port-forward by "sre-bob" to pod %s/cart: audit`, ns)))
	})
}

func TestPortForwardAuditMode(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t, nil)
	grantPortForward(t, ns)
	guard(t, ns, "guard", v1alpha1.ActionDeny, func(l *v1alpha1.LoopbackService) {
		l.Spec.PortForward = &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardAudit}
	})
	g.Expect(env.Client.Create(context.Background(), pod(ns, "cart"))).To(Succeed())
	dev, err := env.AddUser("dev-carol", "developers")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() float64 {
		err := portForward(t, dev, ns, "cart")
		g.Expect(isLoopguardDenial(err)).To(BeFalse(), "Audit admits: %v", err)
		return testutil.ToFloat64(metrics.PortForwards.WithLabelValues(ns, "audit"))
	}, 10*time.Second, 100*time.Millisecond).Should(BeNumerically(">=", 1))
}
