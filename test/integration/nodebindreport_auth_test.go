package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/app"
	"github.com/loopguard/loopguard/test/testenv"
)

const (
	agentNamespace = "loopguard-agent"
	agentSA        = "loopguard-agent"
	agentUser      = "system:serviceaccount:" + agentNamespace + ":" + agentSA
)

// applyDir creates every object of the YAML files of a config/ directory
// (kustomization.yaml and kustomizeconfig.yaml excepted).
func applyDir(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML in %s: %v", dir, err)
	}
	for _, f := range files {
		if b := filepath.Base(f); b == "kustomization.yaml" || b == "kustomizeconfig.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := env.Client.Create(context.Background(), u); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("failed to create %s %s from %s: %v", u.GetKind(), u.GetName(), f, err)
			}
		}
	}
}

// agentClient returns a client that authenticates with a fresh token of
// the agent's ServiceAccount, bound to pod (nil: a token bound to nothing).
func agentClient(t *testing.T, pod *corev1.Pod) client.Client {
	t.Helper()
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tok, err := cs.CoreV1().ServiceAccounts(agentNamespace).CreateToken(ctx, agentSA, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("failed to request a token: %v", err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok.Status.Token
	c, err := client.New(cfg, client.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func report(node string) *v1alpha1.NodeBindReport {
	return &v1alpha1.NodeBindReport{ObjectMeta: metav1.ObjectMeta{Name: node}}
}

// withStatus fills a report's status as an agent would after a scan.
func withStatus(r *v1alpha1.NodeBindReport) *v1alpha1.NodeBindReport {
	r.Status = v1alpha1.NodeBindReportStatus{
		ScannedAt: ptr.To(metav1.Now()), PodsChecked: 1, PodsBeyondLoopback: 1,
		Pods: []v1alpha1.PodBindReport{{Namespace: "shop", Name: "envoy", UID: "0b5c3a52-1f9e-4b4e-9d55-000000000001",
			Listeners: []v1alpha1.BindListener{{Protocol: corev1.ProtocolTCP, Address: "0.0.0.0", Port: 15000, Process: "envoy"}}}},
	}
	return r
}

// setupAgent creates the agent's namespace, ServiceAccount, role binding,
// nodes a and b, and a pod of the agent on node a; it returns the pod.
func setupAgent(t *testing.T) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	c := env.Client
	applyDir(t, "config/agent-policy")
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: agentNamespace, Name: agentSA}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "agent-rolebinding"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "agent-role"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: agentNamespace, Name: agentSA}},
		},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("failed to create %T %s: %v", o, o.GetName(), err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: agentNamespace, Name: "agent-on-a"},
		Spec: corev1.PodSpec{
			NodeName: "node-a", ServiceAccountName: agentSA,
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "agent", Image: "loopguard-agent:dev"}},
		},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatalf("failed to create the agent pod: %v", err)
	}
	return pod
}

// TestAgentWritesOnlyItsNodesReport proves the NodeRestriction pattern of
// config/agent-policy with a real API server and real tokens: a token bound
// to a pod on node-a writes node-a's NodeBindReport and is refused node-b's
// (create, status update, delete), with the policy's message; a token bound
// to no pod writes nothing; RBAC gives the agent no delete at all.
func TestAgentWritesOnlyItsNodesReport(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pod := setupAgent(t)
	agent := agentClient(t, pod)

	// The policy takes effect asynchronously: wait until it refuses. A
	// create the API server admitted before that is undone, or the
	// admin's create of node-b below would find it.
	g.Eventually(func() error {
		err := agent.Create(ctx, report("node-b"))
		if err == nil {
			g.Expect(env.Client.Delete(ctx, report("node-b"))).To(Succeed())
			return errors.New("created before the policy took effect")
		}
		return err
	}).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).Should(MatchError(ContainSubstring("may not create NodeBindReport node-b")))

	// Its own node: create and write status.
	own := report("node-a")
	g.Expect(agent.Create(ctx, own)).To(Succeed())
	g.Expect(agent.Status().Update(ctx, withStatus(own))).To(Succeed())
	g.Expect(agent.Status().Patch(ctx, withStatus(own.DeepCopy()), client.Merge)).To(Succeed())

	// Another node's report, as the admin created it.
	other := report("node-b")
	g.Expect(env.Client.Create(ctx, other)).To(Succeed())
	cases := []struct {
		name string
		do   func() error
		want string
	}{
		{"create", func() error { return agent.Create(ctx, report("node-b")) },
			agentUser + " on node node-a may not create NodeBindReport node-b: an agent writes only the report of its own node"},
		{"update", func() error { return agent.Update(ctx, other.DeepCopy()) },
			"on node node-a may not update NodeBindReport node-b"},
		{"status update", func() error { return agent.Status().Update(ctx, withStatus(other.DeepCopy())) },
			"on node node-a may not update NodeBindReport node-b"},
		{"status patch", func() error { return agent.Status().Patch(ctx, withStatus(other.DeepCopy()), client.Merge) },
			"on node node-a may not update NodeBindReport node-b"},
		{"delete (RBAC)", func() error { return agent.Delete(ctx, other.DeepCopy()) },
			`cannot delete resource "nodebindreports"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tc.do()
			g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "want a refusal, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}

	t.Run("delete, with RBAC granted by mistake", func(t *testing.T) {
		g := NewWithT(t)
		grantDelete(t)
		g.Eventually(func() error { return agent.Delete(ctx, other.DeepCopy()) }).WithTimeout(30 * time.Second).
			Should(MatchError(ContainSubstring("on node node-a may not delete NodeBindReport node-b")))
		g.Expect(agent.Delete(ctx, own.DeepCopy())).To(Succeed(), "its own report")
	})

	t.Run("token bound to no pod", func(t *testing.T) {
		g := NewWithT(t)
		unbound := agentClient(t, nil)
		err := unbound.Create(ctx, report("node-a"))
		g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "want a refusal, got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("its token is not bound to a pod on a node"))
	})

	// The report is still node-b's as the admin wrote it.
	var got v1alpha1.NodeBindReport
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: "node-b"}, &got)).To(Succeed())
	g.Expect(got.Status.Pods).To(BeEmpty())
}

// grantDelete gives the agent delete on NodeBindReports, a mistake the
// admission policy must still catch.
func grantDelete(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "too-much"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"nodebindreports"}, Verbs: []string{"delete"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "too-much"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "too-much"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: agentNamespace, Name: agentSA}}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}
