package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}, &env) }

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	if u.GetNamespace() == "" && u.GetKind() == "LoopbackService" {
		u.SetNamespace("default")
	}
	return u
}

// TestSchemaRejects sends invalid policies to the real API server and
// checks it refuses each with a message that names the field.
func TestSchemaRejects(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want []string
	}{
		{"port 0", `{podSelector: {}, ports: [{port: 0}]}`,
			[]string{"spec.ports[0].port", "should be greater than or equal to 1"}},
		{"port 70000", `{podSelector: {}, ports: [{port: 70000}]}`,
			[]string{"spec.ports[0].port", "should be less than or equal to 65535"}},
		{"endPort below port", `{podSelector: {}, ports: [{port: 6069, endPort: 6060}]}`,
			[]string{"spec.ports[0]", "endPort must be greater than or equal to port"}},
		{"duplicate ports", `{podSelector: {}, ports: [{port: 15000}, {port: 15000, protocol: TCP}]}`,
			[]string{"spec.ports", "ports must be unique by port and protocol"}},
		{"unknown enforcementAction", `{podSelector: {}, ports: [{port: 1}], enforcementAction: Block}`,
			[]string{"spec.enforcementAction", `Unsupported value: "Block"`, `"Deny", "Warn", "Audit"`}},
		{"unknown protocol", `{podSelector: {}, ports: [{port: 1, protocol: ICMP}]}`,
			[]string{"spec.ports[0].protocol", `Unsupported value: "ICMP"`}},
		{"missing podSelector", `{ports: [{port: 15000}]}`,
			[]string{"spec.podSelector", "Required value"}},
		{"no ports", `{podSelector: {}, ports: []}`,
			[]string{"spec.ports", "should have at least 1 items"}},
		{"bad port name", `{podSelector: {}, ports: [{port: 1, name: Envoy_Admin}]}`,
			[]string{"spec.ports[0].name"}},
	}
	for _, kind := range []string{"LoopbackService", "ClusterLoopbackService"} {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				g := NewWithT(t)
				spec := tc.spec
				if kind == "ClusterLoopbackService" {
					spec = "{namespaceSelector: {}, " + strings.TrimPrefix(spec, "{")
				}
				u := object(t, fmt.Sprintf("{apiVersion: loopguard.io/v1alpha1, kind: %s, metadata: {name: bad}, spec: %s}", kind, spec))
				err := env.Client.Create(context.Background(), u)
				g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
				for _, w := range tc.want {
					g.Expect(err.Error()).To(ContainSubstring(w))
				}
			})
		}
	}
	t.Run("ClusterLoopbackService/missing namespaceSelector", func(t *testing.T) {
		u := object(t, `{apiVersion: loopguard.io/v1alpha1, kind: ClusterLoopbackService, metadata: {name: bad}, spec: {podSelector: {}, ports: [{port: 1}]}}`)
		err := env.Client.Create(context.Background(), u)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("spec.namespaceSelector: Required value")))
	})
}

// TestDefaults checks the schema's defaults land in what the API server
// stores.
func TestDefaults(t *testing.T) {
	g := NewWithT(t)
	u := object(t, `{apiVersion: loopguard.io/v1alpha1, kind: LoopbackService, metadata: {name: defaults}, spec: {podSelector: {}, ports: [{port: 15000}]}}`)
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())
	spec := u.Object["spec"].(map[string]any)
	g.Expect(spec["enforcementAction"]).To(Equal("Deny"))
	g.Expect(spec["hostNetwork"]).To(Equal("Deny"))
	g.Expect(spec["networkPolicy"]).To(Equal("Managed"))
	g.Expect(spec["ports"].([]any)[0].(map[string]any)["protocol"]).To(Equal("TCP"))
}

// TestSamplesApply creates every sample in config/samples.
func TestSamplesApply(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			u := object(t, string(data))
			NewWithT(t).Expect(env.Client.Create(context.Background(), u)).To(Succeed())
		})
	}
}
