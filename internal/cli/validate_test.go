package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/config/crd"
)

// policyCase is a policy and the field paths the API server refuses in it
// (none: it is accepted). "<nil>" is the object as a whole: the API
// server's "some validation rules were not checked".
type policyCase struct {
	name   string
	kind   string // LoopbackService or ClusterLoopbackService
	doc    string // the object without apiVersion and kind
	fields []string
}

const validSpec = `{podSelector: {}, ports: [{port: 15000}]}`

var policyCases = []policyCase{
	{"valid", "LoopbackService", `{metadata: {name: ok}, spec: ` + validSpec + `}`, nil},
	{"valid cluster", "ClusterLoopbackService", `{metadata: {name: ok}, spec: {namespaceSelector: {}, podSelector: {}, ports: [{port: 15000}]}}`, nil},
	{"networkPolicy Admin on a LoopbackService", "LoopbackService",
		`{metadata: {name: admin}, spec: {podSelector: {}, ports: [{port: 1}], networkPolicy: Admin}}`, []string{"spec.networkPolicy"}},
	{"networkPolicy Admin on a ClusterLoopbackService", "ClusterLoopbackService",
		`{metadata: {name: admin}, spec: {namespaceSelector: {}, podSelector: {}, ports: [{port: 1}], networkPolicy: Admin, adminPriority: 1000}}`, nil},
	{"adminPriority 1001", "ClusterLoopbackService",
		`{metadata: {name: prio}, spec: {namespaceSelector: {}, podSelector: {}, ports: [{port: 1}], networkPolicy: Admin, adminPriority: 1001}}`, []string{"spec.adminPriority"}},
	{"adminPriority -1", "ClusterLoopbackService",
		`{metadata: {name: prio}, spec: {namespaceSelector: {}, podSelector: {}, ports: [{port: 1}], adminPriority: -1}}`, []string{"spec.adminPriority"}},
	{"endPort below port", "LoopbackService",
		`{metadata: {name: range}, spec: {podSelector: {}, ports: [{port: 6069, endPort: 6060}]}}`, []string{"spec.ports[0]"}},
	{"endPort 65536", "LoopbackService",
		`{metadata: {name: range}, spec: {podSelector: {}, ports: [{port: 6069, endPort: 65536}]}}`, []string{"spec.ports[0].endPort"}},
	{"duplicate ports (protocol defaulted)", "LoopbackService",
		`{metadata: {name: dup}, spec: {podSelector: {}, ports: [{port: 15000}, {port: 15000, protocol: TCP}]}}`, []string{"spec.ports"}},
	{"same port, other protocol", "LoopbackService",
		`{metadata: {name: dup}, spec: {podSelector: {}, ports: [{port: 53}, {port: 53, protocol: UDP}]}}`, nil},
	{"port 0", "LoopbackService",
		`{metadata: {name: p}, spec: {podSelector: {}, ports: [{port: 0}]}}`, []string{"spec.ports[0].port"}},
	{"port 70000", "ClusterLoopbackService",
		`{metadata: {name: p}, spec: {namespaceSelector: {}, podSelector: {}, ports: [{port: 70000}]}}`, []string{"spec.ports[0].port"}},
	{"port missing", "LoopbackService",
		`{metadata: {name: p}, spec: {podSelector: {}, ports: [{name: admin}]}}`, []string{"<nil>", "spec.ports[0].port"}},
	{"no ports", "LoopbackService",
		`{metadata: {name: p}, spec: {podSelector: {}, ports: []}}`, []string{"spec.ports"}},
	{"65 ports", "LoopbackService",
		`{metadata: {name: p}, spec: {podSelector: {}, ports: [` + manyPorts(65) + `]}}`, []string{"<nil>", "spec.ports"}},
	{"port name not IANA", "LoopbackService",
		`{metadata: {name: p}, spec: {podSelector: {}, ports: [{port: 1, name: Envoy_Admin}]}}`, []string{"spec.ports[0].name"}},
	{"port name too long", "LoopbackService",
		`{metadata: {name: p}, spec: {podSelector: {}, ports: [{port: 1, name: abcdefghijklmnop}]}}`, []string{"<nil>", "spec.ports[0].name"}},
	{"bad enum values", "LoopbackService",
		`{metadata: {name: enums}, spec: {podSelector: {}, ports: [{port: 1, protocol: ICMP}], enforcementAction: Block, hostNetwork: Allow, networkPolicy: Calico, portForward: {action: Permit}}}`,
		[]string{"<nil>", "spec.enforcementAction", "spec.hostNetwork", "spec.networkPolicy", "spec.portForward.action", "spec.ports[0].protocol"}},
	{"bad enum hides a rule", "LoopbackService",
		`{metadata: {name: enums}, spec: {podSelector: {}, ports: [{port: 9, endPort: 1}], enforcementAction: Block}}`,
		[]string{"<nil>", "spec.enforcementAction"}},
	{"missing namespaceSelector", "ClusterLoopbackService",
		`{metadata: {name: ns}, spec: ` + validSpec + `}`, []string{"<nil>", "spec.namespaceSelector"}},
	{"missing podSelector", "LoopbackService",
		`{metadata: {name: pods}, spec: {ports: [{port: 1}]}}`, []string{"<nil>", "spec.podSelector"}},
	{"missing spec", "LoopbackService", `{metadata: {name: nospec}}`, []string{"<nil>", "spec"}},
	{"selector operator is not in the schema", "ClusterLoopbackService",
		`{metadata: {name: op}, spec: {namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, operator: Like}]}, ports: [{port: 1}]}}`, nil},
	{"ServiceAccount without namespace, Group with one", "LoopbackService",
		`{metadata: {name: pf}, spec: {podSelector: {}, ports: [{port: 1}], portForward: {allowed: [{kind: ServiceAccount, name: d}, {kind: Group, name: sre, namespace: ops}, {kind: ServiceAccount, name: d, namespace: ops}]}}}`,
		[]string{"spec.portForward.allowed[0]", "spec.portForward.allowed[1]"}},
	{"subject kind and name", "LoopbackService",
		`{metadata: {name: pf}, spec: {podSelector: {}, ports: [{port: 1}], portForward: {allowed: [{kind: Robot, name: r2}, {kind: User, name: ""}]}}}`,
		[]string{"<nil>", "spec.portForward.allowed[0].kind", "spec.portForward.allowed[1].name"}},
	{"status is dropped on create", "LoopbackService",
		`{metadata: {name: st}, spec: ` + validSpec + `, status: {conditions: [{type: 1}]}}`, nil},
	{"name not a DNS subdomain", "LoopbackService", `{metadata: {name: Bad_Name}, spec: ` + validSpec + `}`, []string{"metadata.name"}},
	{"no name", "ClusterLoopbackService", `{metadata: {}, spec: {namespaceSelector: {}, podSelector: {}, ports: [{port: 1}]}}`, []string{"<nil>", "metadata.name"}},
	{"bad label", "LoopbackService", `{metadata: {name: l, labels: {"-x": v}}, spec: ` + validSpec + `}`, []string{"metadata.labels"}},
}

func manyPorts(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("{port: %d}", i+1)
	}
	return strings.Join(ps, ", ")
}

func (tc policyCase) object(t *testing.T) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := sigsyaml.Unmarshal([]byte(tc.doc), &obj); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	obj["apiVersion"] = "loopguard.io/v1alpha1"
	obj["kind"] = tc.kind
	return obj
}

// TestValidatePolicyMatchesAPIServer runs every case through the offline
// validation and a dry-run create on the real kube-apiserver (with the
// same CRDs installed) and checks both refuse the same fields with the
// same messages, and that those are the fields the case expects.
func TestValidatePolicyMatchesAPIServer(t *testing.T) {
	c := controlPlane(t).Client
	ensurePolicyCRDs(t, c)
	const namespace = "default"
	for _, tc := range policyCases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			obj := tc.object(t)
			gvk := gvkLBS
			if tc.kind == "ClusterLoopbackService" {
				gvk = gvkCLBS
			}
			offline := map[string]string{}
			for _, e := range validatePolicy(obj, gvk, namespace) {
				offline[e.Field] = joinMsg(offline[e.Field], e.ErrorBody())
			}

			u := &unstructured.Unstructured{Object: obj}
			if tc.kind == "LoopbackService" {
				u.SetNamespace(namespace)
			}
			server := map[string]string{}
			err := c.Create(context.Background(), u, client.DryRunAll, client.FieldValidation("Strict"))
			var status apierrors.APIStatus
			switch {
			case err == nil:
			case apierrors.IsInvalid(err) && errors.As(err, &status) && status.Status().Details != nil:
				for _, cause := range status.Status().Details.Causes {
					server[cause.Field] = joinMsg(server[cause.Field], cause.Message)
				}
			default:
				t.Fatalf("the API server: want Invalid or success, got %v", err)
			}

			if got, want := fieldsOf(server), slices.Sorted(slices.Values(tc.fields)); !slices.Equal(got, want) {
				t.Errorf("the API server refused %q, the case expects %q (err: %v)", got, want, err)
			}
			for _, f := range fieldsOf(server, offline) {
				if server[f] != offline[f] {
					t.Errorf("%s:\n  API server: %q\n  offline:    %q", f, server[f], offline[f])
				}
			}
		})
	}
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func fieldsOf(ms ...map[string]string) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// ensurePolicyCRDs (re)installs the embedded CRDs on the shared control
// plane: TestAudit's "no CRDs" case deletes them. It waits until a dry-run
// create of a valid policy of each kind is served.
func ensurePolicyCRDs(t *testing.T, c client.Client) {
	t.Helper()
	files, err := crd.Files()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for name, data := range files {
		want := &unstructured.Unstructured{}
		if err := sigsyaml.Unmarshal(data, &want.Object); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(want.GroupVersionKind())
			err := c.Get(ctx, client.ObjectKeyFromObject(want), got)
			if apierrors.IsNotFound(err) {
				err = c.Create(ctx, want.DeepCopy())
			}
			if err == nil && got.GetDeletionTimestamp() == nil {
				break // present (or just created) and not being deleted
			}
			if time.Now().After(deadline) {
				t.Fatalf("cannot install the CRD %s: %v", want.GetName(), err)
			}
			time.Sleep(200 * time.Millisecond) // a deleted CRD goes away once its objects are gone
		}
	}
	for _, tc := range policyCases[:2] { // the valid LoopbackService and ClusterLoopbackService
		for {
			u := &unstructured.Unstructured{Object: tc.object(t)}
			if tc.kind == "LoopbackService" {
				u.SetNamespace("default")
			}
			err := c.Create(ctx, u, client.DryRunAll)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not served: %v", tc.kind, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// BenchmarkBuildSchemaValidators is the one-time cost of compiling the
// embedded CRDs (OpenAPI and CEL) on the first policy.
func BenchmarkBuildSchemaValidators(b *testing.B) {
	for b.Loop() {
		if _, err := buildSchemaValidators(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidatePolicy is the cost per policy once built.
func BenchmarkValidatePolicy(b *testing.B) {
	var obj map[string]any
	doc := `{apiVersion: loopguard.io/v1alpha1, kind: ClusterLoopbackService, metadata: {name: b}, spec: {namespaceSelector: {}, podSelector: {}, ports: [` + manyPorts(8) + `], portForward: {allowed: [{kind: User, name: a}]}}}`
	if err := sigsyaml.Unmarshal([]byte(doc), &obj); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if errs := validatePolicy(obj, gvkCLBS, ""); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
