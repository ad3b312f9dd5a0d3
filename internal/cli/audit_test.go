package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// writeKubeconfig writes a kubeconfig for cfg (client certificates, as
// envtest's users have) and returns its path.
func writeKubeconfig(t *testing.T, cfg *rest.Config, namespace string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test", Namespace: namespace}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		must(t, c.Create(context.Background(), o))
	}
}

func ports(ps ...int32) []corev1.ContainerPort {
	out := make([]corev1.ContainerPort, len(ps))
	for i, p := range ps {
		out[i] = corev1.ContainerPort{ContainerPort: p}
	}
	return out
}

func podSpec(containerPorts ...int32) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "envoy", Ports: ports(containerPorts...)}}}
}

// setupAuditCluster creates the policies and violating objects (accepted:
// no webhook runs) that the audit tests report:
//
//   - namespace shop (loopguard.io/enforce=true): LoopbackServices
//     envoy-admin (15000, Deny) and debug-endpoints (6060-6069, Warn), and
//     the ClusterLoopbackService agent-admin (8126, Audit) applies;
//   - Deployment cart declares 15000, 6060 and 8126; its ReplicaSet and pod
//     (controller-owned, with the owners' UIDs and the same ports) are
//     judged through it;
//   - Service cart-admin targets the port named envoy-admin;
//   - pod node-agent uses hostNetwork on node-1 (with quiet/proxy) and
//     declares 8126;
//   - NetworkPolicy allow-admin re-opens 15000; loopguard's own is ignored;
//   - namespace other has an invalid policy (protects nothing) and a pod
//     that would violate agent-admin, which does not apply there;
//   - namespace quiet has no policy, and a hand-written EndpointSlice to
//     the cart pod's 15000.
func setupAuditCluster(t *testing.T, c client.Client) {
	t.Helper()
	create(t, c,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"loopguard.io/enforce": "true"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "quiet"}},
		&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "envoy-admin", Namespace: "shop"},
			Spec: v1alpha1.LoopbackServiceSpec{
				Ports:             []v1alpha1.LoopbackPort{{Port: 15000, Name: "envoy-admin"}},
				EnforcementAction: v1alpha1.ActionDeny,
			},
		},
		&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "debug-endpoints", Namespace: "shop"},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector:       metav1.LabelSelector{MatchLabels: map[string]string{"tier": "backend"}},
				Ports:             []v1alpha1.LoopbackPort{{Port: 6060, EndPort: ptrTo[int32](6069)}},
				EnforcementAction: v1alpha1.ActionWarn,
			},
		},
		&v1alpha1.ClusterLoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "agent-admin"},
			Spec: v1alpha1.ClusterLoopbackServiceSpec{
				NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"loopguard.io/enforce": "true"}},
				LoopbackServiceSpec: v1alpha1.LoopbackServiceSpec{
					PodSelector:       metav1.LabelSelector{MatchLabels: map[string]string{"metrics-agent": "sidecar"}},
					Ports:             []v1alpha1.LoopbackPort{{Port: 8126}},
					EnforcementAction: v1alpha1.ActionAudit,
					HostNetwork:       v1alpha1.HostNetworkAudit,
				},
			},
		},
		// The schema accepts it; compiling the selector fails (In needs values).
		&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "bad-selector", Namespace: "other"},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn}}},
				Ports:       []v1alpha1.LoopbackPort{{Port: 9999}},
			},
		},
	)

	cartLabels := map[string]string{"app": "cart", "tier": "backend", "metrics-agent": "sidecar"}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: cartLabels}, Spec: podSpec(8080, 15000, 6060, 8126)}
	template.Spec.Containers[0].Ports[1].Name = "admin"
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "shop"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}, Template: template},
	}
	create(t, c, deploy)
	yes := true
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-6d4f", Namespace: "shop", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "cart", UID: deploy.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}}, Template: template},
	}
	create(t, c, rs)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-6d4f-x2k9", Namespace: "shop", Labels: cartLabels, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec: template.Spec,
	}
	cartAdmin := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-admin", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "cart"}, Ports: []corev1.ServicePort{
			{Name: "admin", Port: 80, TargetPort: intstr.FromString("envoy-admin")}}},
	}
	create(t, c, pod, cartAdmin,
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Namespace: "shop", Labels: map[string]string{"metrics-agent": "sidecar"}},
			Spec: corev1.PodSpec{NodeName: "node-1", HostNetwork: true, Containers: []corev1.Container{
				{Name: "agent", Image: "agent", Ports: ports(8126)}}},
		},
		// Shares node-1's loopback with node-agent; no policy applies in quiet.
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "proxy", Namespace: "quiet"},
			Spec:       corev1.PodSpec{NodeName: "node-1", HostNetwork: true, Containers: []corev1.Container{{Name: "proxy", Image: "proxy"}}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "cart"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		&networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "allow-admin", Namespace: "shop"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{
					{Port: ptrTo(intstr.FromInt32(8080))}, {Port: ptrTo(intstr.FromInt32(15000))}}}},
			},
		},
		// loopguard's name and label, but no controller: anyone with edit
		// can write both (issue #15 hole 2). An allow-all, so a conflict.
		&networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "loopguard-envoy-admin", Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/managed-by": "loopguard"}},
			Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "other", Labels: map[string]string{"metrics-agent": "sidecar"}},
			Spec:       podSpec(8126),
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "envoy", Namespace: "quiet"},
			Spec:       podSpec(15000),
		},
	)
	create(t, c,
		// A Service without a selector and its hand-written slice to the
		// cart pod's admin port; the EndpointSlice controller's slice of
		// the same shape (its label, and a controller reference to the
		// Service with its UID) is the Service's business; one with the
		// label alone is hand-written; one in namespace quiet naming the
		// cart pod is judged by shop's policies.
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "admin-by-hand", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "admin-by-hand"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptrTo[int32](15000)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.30"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "cart-6d4f-x2k9"}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "cart-admin-x7q2p", Namespace: "shop", Labels: map[string]string{
				discoveryv1.LabelServiceName: "cart-admin", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "cart-admin", UID: cartAdmin.UID, Controller: &yes}}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptrTo[int32](15000)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.30"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "cart-6d4f-x2k9"}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "cart-admin-fake", Namespace: "shop", Labels: map[string]string{
				discoveryv1.LabelServiceName: "cart-admin", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptrTo[int32](15000)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.30"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "cart-6d4f-x2k9"}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "steal", Namespace: "quiet", Labels: map[string]string{discoveryv1.LabelServiceName: "steal"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptrTo[int32](15000)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.30"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "cart-6d4f-x2k9"}}},
		},
	)
}

func ptrTo[T any](v T) *T { return &v }

// TestAudit runs `loopguard audit` against a real API server. The subtests
// run in order; the last one removes the CRDs.
func TestAudit(t *testing.T) {
	e := controlPlane(t)
	setupAuditCluster(t, e.Client)
	kubeconfig := writeKubeconfig(t, e.Config, "shop")
	audit := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		return run(t, "", append([]string{"audit", "--kubeconfig", kubeconfig}, args...)...)
	}
	// goldenRun records a run in testdata/audit/<name>.golden with the
	// kubeconfig path elided.
	goldenRun := func(t *testing.T, name string, wantCode int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := audit(t, args...)
		if code != wantCode {
			t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, stdout, stderr)
		}
		golden(t, "audit/"+name+".golden", transcript(append([]string{"audit", "--kubeconfig", "KUBECONFIG"}, args...), "", stdout, stderr, code))
		return stdout, stderr
	}

	t.Run("context namespace, table", func(t *testing.T) {
		goldenRun(t, "shop.table", ExitViolations)
	})
	t.Run("wide", func(t *testing.T) {
		goldenRun(t, "shop.wide", ExitViolations, "-n", "shop", "-o", "wide")
	})
	t.Run("all namespaces, json", func(t *testing.T) {
		stdout, stderr := goldenRun(t, "all.json", ExitViolations, "-A", "-o", "json")
		if stderr != "" {
			t.Errorf("-o json wrote to stderr: %q", stderr)
		}
		var rep auditReport
		must(t, json.Unmarshal([]byte(stdout), &rep))
		if strings.Join(rep.Namespaces, ",") != "shop" {
			t.Errorf("namespaces audited: %v, want [shop] (other's only policy is invalid, quiet has none)", rep.Namespaces)
		}
		reasons := map[string]int{}
		for _, f := range rep.Findings {
			reasons[f.Reason]++
			if f.Object.Kind == "ReplicaSet" || f.Object.Name == "cart-6d4f-x2k9" {
				t.Errorf("controller-owned %s %s judged on its own", f.Object.Kind, f.Object.Name)
			}
		}
		// node-agent's 8126 is a HostPort finding: on a hostNetwork pod the API server
		// defaults hostPort to containerPort. The hand-written slices: admin-by-hand,
		// cart-admin-fake (the controller's label alone) and quiet/steal (another
		// namespace's); not cart-admin-x7q2p (the controller's).
		if reasons["ContainerPort"] != 3 || reasons["HostPort"] != 1 || reasons["ServiceTarget"] != 1 || reasons["HostNetwork"] != 2 || reasons["EndpointTarget"] != 3 {
			t.Errorf("findings by reason: %v", reasons)
		}
		var conflicting []string
		for _, c := range rep.Conflicts {
			if !slices.Contains(conflicting, c.NetworkPolicy) {
				conflicting = append(conflicting, c.NetworkPolicy)
			}
		}
		if strings.Join(conflicting, ",") != "allow-admin,loopguard-envoy-admin" {
			t.Errorf("conflicting NetworkPolicies %v, want allow-admin and the label-only loopguard-envoy-admin: %+v", conflicting, rep.Conflicts)
		}
		if len(rep.HostNetworkPods) != 1 {
			t.Fatalf("hostNetwork pods: %+v", rep.HostNetworkPods)
		}
		h := rep.HostNetworkPods[0]
		if h.Name != "node-agent" || len(h.Policies) != 2 || strings.Join(h.ProtectedPorts, ",") != "8126/TCP" ||
			strings.Join(h.NodeMates, ",") != "quiet/proxy" {
			t.Errorf("hostNetwork pod: %+v", h)
		}
		if len(rep.InvalidPolicies) != 1 || rep.InvalidPolicies[0].Policy.Name != "bad-selector" {
			t.Errorf("invalid policies: %+v", rep.InvalidPolicies)
		}
	})
	t.Run("yaml", func(t *testing.T) {
		stdout, _ := goldenRun(t, "shop.yaml", ExitViolations, "-n", "shop", "-o", "yaml")
		var rep auditReport
		must(t, yaml.Unmarshal([]byte(stdout), &rep))
		if rep.Summary.Deny == 0 {
			t.Errorf("yaml summary: %+v", rep.Summary)
		}
	})
	t.Run("namespace without policy", func(t *testing.T) {
		goldenRun(t, "quiet.table", ExitOK, "-n", "quiet")
	})
	t.Run("missing namespace", func(t *testing.T) {
		goldenRun(t, "missing-namespace", ExitError, "-n", "nope")
	})
	t.Run("namespace-scoped read-only user", func(t *testing.T) {
		// A Role with get and list in shop only: no cluster policies, no
		// namespace labels.
		create(t, e.Client,
			&rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: "loopguard-auditor", Namespace: "shop"},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"pods", "services", "replicationcontrollers"}, Verbs: []string{"get", "list"}},
					{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list"}},
					{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"get", "list"}},
					{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list"}},
					{APIGroups: []string{"loopguard.io"}, Resources: []string{"loopbackservices"}, Verbs: []string{"get", "list"}},
				},
			},
			&rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "loopguard-auditor", Namespace: "shop"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "loopguard-auditor"},
				Subjects:   []rbacv1.Subject{{Kind: "User", Name: "auditor", APIGroup: "rbac.authorization.k8s.io"}},
			},
		)
		cfg, err := e.AddUser("auditor")
		must(t, err)
		stdout, stderr, code := run(t, "", "audit", "--kubeconfig", writeKubeconfig(t, cfg, "shop"))
		if code != ExitViolations {
			t.Errorf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "cannot list ClusterLoopbackServices (forbidden)") {
			t.Errorf("no warning about cluster policies:\n%s", stderr)
		}
		if !strings.Contains(stderr, "cannot list EndpointSlices (forbidden): hand-written endpoints are not audited") {
			t.Errorf("no warning about EndpointSlices (the role above does not grant them):\n%s", stderr)
		}
		if !strings.Contains(stdout, "lbs/envoy-admin") || strings.Contains(stdout, "clbs/agent-admin") {
			t.Errorf("want findings of the namespace's policies only:\n%s", stdout)
		}
	})
	t.Run("progress", func(t *testing.T) {
		defer func(d time.Duration) { progressAfter = d }(progressAfter)
		progressAfter = 0
		_, stderr, _ := audit(t, "-n", "shop")
		if !strings.Contains(stderr, "loopguard: reading policies") {
			t.Errorf("no progress on stderr in table mode:\n%s", stderr)
		}
		for _, o := range []string{"json", "yaml"} {
			if _, stderr, _ := audit(t, "-n", "shop", "-o", o); stderr != "" {
				t.Errorf("-o %s: stderr must stay empty, got %q", o, stderr)
			}
		}
	})
	t.Run("no CRDs", func(t *testing.T) {
		// The control plane is the package's: put the CRDs back for the
		// tests that run after this one.
		t.Cleanup(func() { ensurePolicyCRDs(t, e.Client) })
		for _, name := range []string{"loopbackservices.loopguard.io", "clusterloopbackservices.loopguard.io"} {
			crd := &unstructured.Unstructured{}
			crd.SetAPIVersion("apiextensions.k8s.io/v1")
			crd.SetKind("CustomResourceDefinition")
			crd.SetName(name)
			must(t, e.Client.Delete(context.Background(), crd))
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			stdout, stderr, code := audit(t, "-n", "shop")
			if code == ExitError && strings.Contains(stderr, "no loopguard CRDs installed") {
				if stdout != "" {
					t.Errorf("stdout must be empty: %q", stdout)
				}
				golden(t, "audit/no-crds.golden", transcript([]string{"audit", "--kubeconfig", "KUBECONFIG", "-n", "shop"}, "", stdout, stderr, code))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after deleting the CRDs: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}
