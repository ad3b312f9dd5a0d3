package webhooks_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
)

// warnings collects the admission warnings the API server returns, as
// kubectl prints them.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// userClient returns an admin client whose warnings are collected.
func userClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c, w
}

var (
	nsSeq   atomic.Int32
	dns1123 = regexp.MustCompile(`[^a-z0-9-]+`)
)

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("wh-%d-%s", nsSeq.Add(1), dns1123.ReplaceAllString(strings.ToLower(t.Name()), "-"))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// guard creates the LoopbackService the tests use and waits until the
// webhook enforces it: the policy index is fed by an informer.
func guard(t *testing.T, ns, name string, action v1alpha1.EnforcementAction, mutate ...func(*v1alpha1.LoopbackService)) {
	t.Helper()
	g := NewWithT(t)
	lbs := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports: []v1alpha1.LoopbackPort{
				{Port: 15000, Name: "envoy-admin"},
				{Port: 6060, EndPort: ptr.To[int32](6069)},
				{Port: 5353, Protocol: corev1.ProtocolUDP},
			},
			EnforcementAction: action,
		},
	}
	for _, m := range mutate {
		m(lbs)
	}
	g.Expect(env.Client.Create(context.Background(), lbs)).To(Succeed())
	g.Eventually(func() int {
		n := 0
		for _, s := range env.Index.Env(ns).Sets {
			for _, p := range s.Policies() {
				if p.Ref.Name == name && p.Generation == lbs.Generation {
					n++
				}
			}
		}
		return n
	}, 10*time.Second, 20*time.Millisecond).Should(Equal(1), "policy %s/%s never reached the webhook's index", ns, name)
	env.WaitEnforced(t, lbs)
}

// podOpt configures a test pod.
type podOpt func(*corev1.Pod)

func pod(ns, name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withLabels(l map[string]string) podOpt { return func(p *corev1.Pod) { p.Labels = l } }

func withContainerPort(container string, port int32, proto corev1.Protocol) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name: container, Image: "registry.invalid/" + container + ":1",
			Ports: []corev1.ContainerPort{{ContainerPort: port, Protocol: proto}},
		})
	}
}

func withInitPort(container string, port int32, sidecar bool) podOpt {
	return func(p *corev1.Pod) {
		c := corev1.Container{Name: container, Image: "registry.invalid/" + container + ":1",
			Ports: []corev1.ContainerPort{{ContainerPort: port}}}
		if sidecar {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
}

func service(ns, name string, selector map[string]string, port int32, target intstr.IntOrString) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "p", Port: port, TargetPort: target}},
		},
	}
}

func podTemplate(ns string, port int32) corev1.PodTemplateSpec {
	p := pod(ns, "", withContainerPort("envoy", port, ""))
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec}
}
