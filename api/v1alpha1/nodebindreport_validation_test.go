package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestNodeBindReportStatusRejects writes invalid report statuses through
// the status subresource of the real API server and checks each refusal
// names the field.
func TestNodeBindReportStatusRejects(t *testing.T) {
	ctx := context.Background()
	base := object(t, `{apiVersion: loopguard.io/v1alpha1, kind: NodeBindReport, metadata: {name: schema-node}}`)
	if err := env.Client.Create(ctx, base); err != nil {
		t.Fatal(err)
	}
	pod := `{namespace: shop, name: envoy, uid: u1, listeners: [%s]}`
	cases := []struct {
		name   string
		status string
		want   []string
	}{
		{"port 0", `{pods: [` + sprintf(pod, `{protocol: TCP, address: "0.0.0.0", port: 0}`) + `]}`,
			[]string{"status.pods[0].listeners[0].port", "should be greater than or equal to 1"}},
		{"unknown protocol", `{pods: [` + sprintf(pod, `{protocol: ICMP, address: "0.0.0.0", port: 1}`) + `]}`,
			[]string{"status.pods[0].listeners[0].protocol", `Unsupported value: "ICMP"`}},
		{"missing address", `{pods: [` + sprintf(pod, `{protocol: TCP, port: 1}`) + `]}`,
			[]string{"status.pods[0].listeners[0].address", "Required value"}},
		{"duplicate pod uid", `{pods: [{namespace: a, name: a, uid: u1}, {namespace: b, name: b, uid: u1}]}`,
			[]string{"status.pods[1]", "Duplicate value"}},
		{"pod without namespace", `{pods: [{name: a, uid: u1}]}`,
			[]string{"status.pods[0].namespace", "Required value"}},
		{"unknown address class", `{discovery: {pods: [{namespace: a, name: a, uid: u1, listeners: [{protocol: TCP, addressClass: Public, address: "1.2.3.4", port: 1}]}]}}`,
			[]string{"status.discovery.pods[0].listeners[0].addressClass", `Unsupported value: "Public"`}},
		{"discovered listener without address class", `{discovery: {pods: [{namespace: a, name: a, uid: u1, listeners: [{protocol: UDP, address: "::1", port: 5353}]}]}}`,
			[]string{"status.discovery.pods[0].listeners[0].addressClass", "Required value"}},
		{"duplicate discovered pod uid", `{discovery: {pods: [{namespace: a, name: a, uid: u1}, {namespace: b, name: b, uid: u1}]}}`,
			[]string{"status.discovery.pods[1]", "Duplicate value"}},
		{"negative count", `{podsChecked: -1}`,
			[]string{"status.podsChecked", "should be greater than or equal to 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			u := base.DeepCopy()
			st := object(t, `{status: `+tc.status+`}`)
			u.Object["status"] = st.Object["status"]
			err := env.Client.Status().Update(ctx, u)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			for _, w := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}

// TestNodeBindReportExplain checks what `kubectl explain nodebindreports`
// and `kubectl get nbr` show: every status field documented, the printer
// columns, the short name and the status subresource.
func TestNodeBindReportExplain(t *testing.T) {
	g := NewWithT(t)
	s := runtime.NewScheme()
	g.Expect(apiextensionsv1.AddToScheme(s)).To(Succeed())
	c, err := client.New(env.Config, client.Options{Scheme: s})
	g.Expect(err).NotTo(HaveOccurred())
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "nodebindreports.loopguard.io"}, &crd)).To(Succeed())
	g.Expect(crd.Spec.Scope).To(Equal(apiextensionsv1.ClusterScoped))
	g.Expect(crd.Spec.Names.ShortNames).To(ConsistOf("nbr"))
	v := crd.Spec.Versions[0]
	g.Expect(v.Subresources.Status).NotTo(BeNil())
	var cols []string
	for _, c := range v.AdditionalPrinterColumns {
		cols = append(cols, c.Name+"="+c.JSONPath)
	}
	g.Expect(cols).To(ContainElements("Pods Checked=.status.podsChecked", "Beyond Loopback=.status.podsBeyondLoopback", "Scanned=.status.scannedAt"))
	g.Expect(v.Schema.OpenAPIV3Schema.Properties).NotTo(HaveKey("spec"), "a status-only object")

	var undocumented []string
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		for name, p := range s.Properties {
			if p.Description == "" {
				undocumented = append(undocumented, path+"."+name)
			}
			walk(path+"."+name, p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", *s.Items.Schema)
		}
	}
	status := v.Schema.OpenAPIV3Schema.Properties["status"]
	walk("status", status)
	g.Expect(undocumented).To(BeEmpty(), "kubectl explain shows these without a description")
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
