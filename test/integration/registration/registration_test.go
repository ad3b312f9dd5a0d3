package registration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/test/testenv"
)

const (
	timeout = 30 * time.Second
	poll    = 50 * time.Millisecond
)

func namespace(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

func protect(ns, name string, port int32) *v1alpha1.LoopbackService {
	return &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.LoopbackServiceSpec{PodSelector: metav1.LabelSelector{},
			Ports: []v1alpha1.LoopbackPort{{Port: port}}},
	}
}

// exposing is a pod declaring containerPort port.
func exposing(ns, name string, port int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x",
			Ports: []corev1.ContainerPort{{ContainerPort: port}}}}},
	}
}

// createPod creates pod with server-side dry-run (admission runs, nothing
// is stored) and returns the error.
func createPod(pod *corev1.Pod) error {
	return env.Client.Create(context.Background(), pod.DeepCopy(), client.DryRunAll)
}

func enforced(g Gomega, obj client.Object) *metav1.Condition {
	c, err := env.Enforced(context.Background(), obj)
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

func webhooks(g Gomega) []admissionregistrationv1.ValidatingWebhook {
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Name: testenv.WebhookConfigName}, &vwc)).To(Succeed())
	return vwc.Webhooks
}

// sentToLoopguard says whether a pod write in namespace ns (with labels)
// matches a registered pods webhook.
func sentToLoopguard(g Gomega, ns string, labels map[string]string) bool {
	set := map[string]string{"kubernetes.io/metadata.name": ns}
	for k, v := range labels {
		set[k] = v
	}
	for _, w := range webhooks(g) {
		if !strings.HasPrefix(w.Name, "pods.") {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
		g.Expect(err).NotTo(HaveOccurred())
		if sel.Matches(mapLabels(set)) {
			return true
		}
	}
	return false
}

type mapLabels map[string]string

func (m mapLabels) Has(k string) bool              { _, ok := m[k]; return ok }
func (m mapLabels) Get(k string) string            { return m[k] }
func (m mapLabels) Lookup(k string) (string, bool) { v, ok := m[k]; return v, ok }

func reviews(ns string) float64 {
	var n float64
	for _, d := range []string{"allow", "deny", "warn", "audit", "error"} {
		n += testutil.ToFloat64(metrics.AdmissionDecisions.WithLabelValues("Pod", "CREATE", ns, d))
	}
	return n
}

// TestRegistrationFollowsPolicies: a namespace is sent to loopguard from
// the moment a policy reports Enforced until the policy is deleted, and a
// namespace no policy applies to never is (0 reviews).
func TestRegistrationFollowsPolicies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	guarded := namespace(t, "reg-guarded", nil)
	open := namespace(t, "reg-open", nil)

	policy := protect(guarded, "admin", 15000)
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	env.WaitEnforced(t, policy)
	g.Expect(enforced(g, policy).Message).To(ContainSubstring("pods.loopguard.io"))
	g.Expect(sentToLoopguard(g, guarded, nil)).To(BeTrue())
	g.Expect(sentToLoopguard(g, open, nil)).To(BeFalse())

	err := createPod(exposing(guarded, "p", 15000))
	g.Expect(err).To(MatchError(ContainSubstring(`admission webhook "pods.loopguard.io" denied the request`)))
	g.Expect(createPod(exposing(open, "p", 15000))).To(Succeed())
	g.Expect(reviews(open)).To(BeZero(), "loopguard reviewed a pod of a namespace no policy applies to")
	g.Expect(reviews(guarded)).To(BeNumerically(">=", 1))

	// A cluster policy covers a namespace it selects from its first write.
	clbs := &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: "reg-prod"},
		Spec: v1alpha1.ClusterLoopbackServiceSpec{
			NamespaceSelector:   metav1.LabelSelector{MatchLabels: map[string]string{"reg-env": "prod"}},
			LoopbackServiceSpec: protect("", "", 16000).Spec}}
	g.Expect(env.Client.Create(ctx, clbs)).To(Succeed())
	env.WaitEnforced(t, clbs)
	later := namespace(t, "reg-prod-later", map[string]string{"reg-env": "prod"})
	g.Expect(createPod(exposing(later, "p", 16000))).To(MatchError(ContainSubstring("denied the request")))
	g.Expect(createPod(exposing(open, "p", 16000))).To(Succeed())
	g.Expect(reviews(open)).To(BeZero())

	// Changed: the new selector's namespaces, no longer the old one's.
	staging := namespace(t, "reg-staging", map[string]string{"reg-env": "staging"})
	g.Expect(env.Change(ctx, clbs, func() { clbs.Spec.NamespaceSelector.MatchLabels["reg-env"] = "staging" })).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := enforced(g, clbs)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(clbs.Generation))
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	}, timeout, poll).Should(Succeed())
	g.Expect(sentToLoopguard(g, staging, map[string]string{"reg-env": "staging"})).To(BeTrue())
	g.Expect(sentToLoopguard(g, later, map[string]string{"reg-env": "prod"})).To(BeFalse())
	g.Expect(createPod(exposing(staging, "p", 16000))).To(MatchError(ContainSubstring("denied the request")))

	// Deleted: no longer sent.
	g.Expect(env.Client.Delete(ctx, policy)).To(Succeed())
	g.Expect(env.Client.Delete(ctx, clbs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(sentToLoopguard(g, guarded, nil)).To(BeFalse())
		g.Expect(sentToLoopguard(g, later, map[string]string{"reg-env": "prod"})).To(BeFalse())
	}, timeout, poll).Should(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(webhooks(g)).To(BeEmpty()) }, timeout, poll).Should(Succeed())
}

// TestRegistrationRacesPolicyAndPods creates a policy while pods are
// being created in its namespace as fast as the API server takes them:
// every pod created after the policy reported Enforced is judged
// (refused), in every round.
func TestRegistrationRacesPolicyAndPods(t *testing.T) {
	ctx := context.Background()
	const rounds = 10
	for round := range rounds {
		ns := namespace(t, fmt.Sprintf("reg-race-%d", round), nil)
		policy := protect(ns, "admin", 15000)
		var (
			mu         sync.Mutex
			enforcedAt time.Time // when this test saw Enforced=True
			after      int       // attempts started after it
			admitted   []string  // of those, admitted
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seen := !enforcedAt.IsZero()
					mu.Unlock()
					err := createPod(exposing(ns, fmt.Sprintf("p-%d-%d", w, i), 15000))
					if !seen {
						continue
					}
					mu.Lock()
					after++
					if err == nil {
						admitted = append(admitted, fmt.Sprintf("p-%d-%d", w, i))
					} else if !strings.Contains(err.Error(), "denied the request") {
						t.Errorf("round %d: unexpected error: %v", round, err)
					}
					done := after >= 20
					mu.Unlock()
					if done {
						return
					}
				}
			}()
		}
		if err := env.Client.Create(ctx, policy); err != nil {
			t.Fatal(err)
		}
		NewWithT(t).Eventually(func(g Gomega) {
			c := enforced(g, policy)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}, timeout, time.Millisecond).Should(Succeed())
		mu.Lock()
		enforcedAt = time.Now()
		mu.Unlock()
		wg.Wait()
		close(stop)
		if len(admitted) > 0 {
			t.Errorf("round %d: %d of %d pods created after the policy reported Enforced were admitted: %v", round, len(admitted), after, admitted)
		}
		if err := env.Client.Delete(ctx, policy); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRegistrationRestoredAfterTampering: a write that strips the
// registration (anyone who may update the configuration: an install
// re-applied by hand, a compromised controller) is undone, with the
// policies unchanged since the registration was last found as desired.
func TestRegistrationRestoredAfterTampering(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	guarded := namespace(t, "reg-tampered", nil)
	policy := protect(guarded, "admin", 15000)
	g.Expect(env.Client.Create(ctx, policy)).To(Succeed())
	env.WaitEnforced(t, policy)
	g.Expect(sentToLoopguard(g, guarded, nil)).To(BeTrue())

	g.Eventually(func(g Gomega) {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: testenv.WebhookConfigName}, &vwc)).To(Succeed())
		vwc.Webhooks = nil
		g.Expect(env.Client.Update(ctx, &vwc)).To(Succeed())
	}, timeout, poll).Should(Succeed())
	// The API server applies a configuration change a moment after it is
	// stored: wait for a refusal, not only for the stored webhooks.
	g.Eventually(func(g Gomega) {
		g.Expect(sentToLoopguard(g, guarded, nil)).To(BeTrue())
		g.Expect(createPod(exposing(guarded, "p", 15000))).To(MatchError(ContainSubstring("denied the request")))
	}, timeout, poll).Should(Succeed())
	g.Expect(env.Client.Delete(ctx, policy)).To(Succeed())
}
