// Package webhookauth runs the manager's webhook with --webhook-client-ca
// behind a real kube-apiserver that authenticates to it (an
// AdmissionConfiguration with a client certificate, docs/webhook-auth.md):
// the API server's reviews arrive, anyone else's handshake is refused.
package webhookauth

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Options{Manager: true, WebhookClientAuth: true}, &env)
}

func TestAPIServerAuthenticatesToTheWebhook(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "webhookauth-"}}
	g.Expect(env.Client.Create(ctx, ns)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	lbs := &v1alpha1.LoopbackService{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-admin", Namespace: ns.Name},
		Spec: v1alpha1.LoopbackServiceSpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ports:       []v1alpha1.LoopbackPort{{Port: 15000}},
			PortForward: &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardDeny},
		},
	}
	g.Expect(env.Client.Create(ctx, lbs)).To(Succeed())
	g.Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-0", Namespace: ns.Name, Labels: map[string]string{"app": "cart"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	})).To(Succeed())

	// The API server's review arrives (with its certificate) and the guard
	// refuses the port-forward.
	cs, err := kubernetes.NewForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() string {
		err := cs.CoreV1().RESTClient().Post().Namespace(ns.Name).Resource("pods").Name("cart-0").
			SubResource("portforward").Param("ports", "15000").Do(ctx).Error()
		if err == nil {
			return ""
		}
		return err.Error()
	}, 20*time.Second, 100*time.Millisecond).Should(ContainSubstring(`admission webhook "portforward.loopguard.io" denied the request`))

	// A pod of the cluster posting straight to the webhook has no
	// certificate: the handshake fails, nothing is reviewed.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the forger's side
	}}
	resp, err := client.Post("https://"+env.WebhookAddr+"/validate-portforward", "application/json",
		strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CONNECT"}}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a review without a client certificate was answered: HTTP %d", resp.StatusCode)
	}
	t.Logf("forged review: %v", err)
}
