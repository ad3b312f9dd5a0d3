package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestRewriteWebhooks(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	bundle := base64.StdEncoding.EncodeToString(ca)

	tests := []struct {
		name    string
		in      string
		want    []string // expected output documents, compared as YAML
		wantErr string
	}{{
		name: "service replaced by url, other fields and objects",
		in: `apiVersion: v1
kind: Service
metadata: {name: webhook-service, namespace: system}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: vwc
  annotations: {cert-manager.io/inject-ca-from: system/serving-cert}
webhooks:
- name: a.loopguard.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  matchPolicy: Equivalent
  namespaceSelector:
    matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]
  matchConditions: [{name: not-dry, expression: "!request.dryRun"}]
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [services]}]
  clientConfig:
    service: {name: webhook-service, namespace: system, path: /validate-v1-service, port: 443}
- name: b.loopguard.io
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig:
    service: {name: webhook-service, namespace: system}
`,
		want: []string{`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: vwc
  annotations: {cert-manager.io/inject-ca-from: system/serving-cert}
webhooks:
- name: a.loopguard.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  matchPolicy: Equivalent
  namespaceSelector:
    matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]
  matchConditions: [{name: not-dry, expression: "!request.dryRun"}]
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [services]}]
  clientConfig: {url: "https://127.0.0.1:9443/validate-v1-service", caBundle: ` + bundle + `}
- name: b.loopguard.io
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {url: "https://127.0.0.1:9443/", caBundle: ` + bundle + `}
`},
	}, {
		name: "two configurations, relative path",
		in: `kind: ValidatingWebhookConfiguration
metadata: {name: one}
webhooks: [{name: x, clientConfig: {service: {name: s, namespace: n, path: v}}}]
---
---
kind: MutatingWebhookConfiguration
metadata: {name: two}
webhooks: [{name: y, clientConfig: {service: {name: s, namespace: n, path: /m}}}]
`,
		want: []string{
			`{kind: ValidatingWebhookConfiguration, metadata: {name: one}, webhooks: [{name: x, clientConfig: {url: "https://127.0.0.1:9443/v", caBundle: ` + bundle + `}}]}`,
			`{kind: MutatingWebhookConfiguration, metadata: {name: two}, webhooks: [{name: y, clientConfig: {url: "https://127.0.0.1:9443/m", caBundle: ` + bundle + `}}]}`,
		},
	}, {
		name:    "no webhook configuration",
		in:      "kind: Service\nmetadata: {name: s}\n",
		wantErr: "no ValidatingWebhookConfiguration",
	}, {
		name:    "url instead of service",
		in:      "kind: ValidatingWebhookConfiguration\nmetadata: {name: v}\nwebhooks: [{name: x, clientConfig: {url: https://example.com/}}]\n",
		wantErr: "clientConfig.url is set",
	}, {
		name:    "missing clientConfig",
		in:      "kind: ValidatingWebhookConfiguration\nmetadata: {name: v}\nwebhooks: [{name: x}]\n",
		wantErr: "no clientConfig",
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := rewriteWebhooks(strings.NewReader(tc.in), "https://127.0.0.1:9443/", ca)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			got := strings.Split(string(out), "---\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d documents, want %d:\n%s", len(got), len(tc.want), out)
			}
			for i := range got {
				assertYAMLEqual(t, got[i], tc.want[i])
			}
		})
	}
}

func assertYAMLEqual(t *testing.T, got, want string) {
	t.Helper()
	// Round-trip both through JSON so key order and flow style do not matter.
	g, err := yaml.YAMLToJSON([]byte(got))
	if err != nil {
		t.Fatalf("got: %v", err)
	}
	w, err := yaml.YAMLToJSON([]byte(want))
	if err != nil {
		t.Fatalf("want: %v", err)
	}
	var gv, wv any
	_ = yaml.Unmarshal(g, &gv)
	_ = yaml.Unmarshal(w, &wv)
	gj, _ := yaml.Marshal(gv)
	wj, _ := yaml.Marshal(wv)
	if string(gj) != string(wj) {
		t.Errorf("document differs\n--- got\n%s\n--- want\n%s", gj, wj)
	}
}

func TestEnsurePKIIdempotentAndRenews(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()

	first, err := ensurePKI(dir, defaultNode, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(pkiSpecs(defaultNode))+1 {
		t.Fatalf("first run wrote %v, want every cert and the SA key", first)
	}
	again, err := ensurePKI(dir, defaultNode, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("second run rewrote %v, want nothing", again)
	}

	// A removed CA regenerates it and every leaf it signs, nothing else.
	if err := os.Remove(filepath.Join(dir, "webhook", "ca.crt")); err != nil {
		t.Fatal(err)
	}
	re, err := ensurePKI(dir, defaultNode, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(re, []string{"webhook/ca.crt", "webhook/tls.crt"}) {
		t.Fatalf("after removing the webhook CA rewrote %v", re)
	}

	// The serving cert verifies against its CA for 127.0.0.1.
	kp, err := loadKeyPair(filepath.Join(dir, "webhook", "tls.crt"), filepath.Join(dir, "webhook", "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "webhook", "ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := kp.cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("webhook cert does not verify: %v", err)
	}
	if b, _ := pem.Decode(caPEM); b == nil {
		t.Fatal("ca.crt is not PEM")
	}

	// Within a day of leaf expiry: leaves are renewed, CAs and SA key kept.
	later, err := ensurePKI(dir, defaultNode, now.Add(leafValidity-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(later, "ca.crt") || slices.Contains(later, "sa.key") || !slices.Contains(later, "webhook/tls.crt") {
		t.Fatalf("renewal rewrote %v", later)
	}
}

func TestPKINodeCertificates(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if _, err := ensurePKI(dir, defaultNode, now); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	load := func(name string) *x509.Certificate {
		t.Helper()
		kp, err := loadKeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return kp.cert
	}

	// The Node authorizer and NodeRestriction identify the kubelet by exactly this.
	kc := load("kubelet-client")
	if kc.Subject.CommonName != "system:node:loopguard-dev-node" || !slices.Equal(kc.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("kubelet client subject %v", kc.Subject)
	}
	if _, err := kc.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("kubelet client cert: %v", err)
	}
	// Both servers on the node IP verify for it: kubectl and pods reach the
	// API server there, the API server reaches the kubelet there.
	for _, name := range []string{"apiserver", "kubelet"} {
		if _, err := load(name).Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.245.0.1"}); err != nil {
			t.Errorf("%s cert for 10.245.0.1: %v", name, err)
		}
	}
	if _, err := load("apiserver").Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("apiserver cert for 127.0.0.1: %v", err)
	}

	// Another node IP re-issues the certificates naming it, nothing else.
	other := nodeIdentity{name: defaultNode.name, ip: net.ParseIP("10.245.0.9")}
	re, err := ensurePKI(dir, other, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(re, []string{"apiserver.crt", "kubelet.crt"}) {
		t.Errorf("new node IP rewrote %v, want apiserver.crt and kubelet.crt", re)
	}
}

// TestPKIWebhookClientCertificate: the API server's webhook client
// certificate verifies, for client authentication, against the webhook
// client CA only: neither the cluster CA (which signs every kubelet and
// user) nor the webhook's serving CA vouches for it.
func TestPKIWebhookClientCertificate(t *testing.T) {
	dir := t.TempDir()
	if _, err := ensurePKI(dir, defaultNode, time.Now()); err != nil {
		t.Fatal(err)
	}
	kp, err := loadKeyPair(filepath.Join(dir, "webhook", "apiserver-client.crt"), filepath.Join(dir, "webhook", "apiserver-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	if kp.cert.Subject.CommonName != "kube-apiserver-webhook-client" {
		t.Errorf("CN %q", kp.cert.Subject.CommonName)
	}
	for _, tc := range []struct {
		ca string
		ok bool
	}{{"webhook/client-ca.crt", true}, {"ca.crt", false}, {"webhook/ca.crt", false}} {
		caPEM, err := os.ReadFile(filepath.Join(dir, tc.ca))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		_, err = kp.cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if (err == nil) != tc.ok {
			t.Errorf("verify against %s: %v, want ok=%v", tc.ca, err, tc.ok)
		}
	}
}
