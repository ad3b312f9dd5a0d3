package webhooks

// Fuzzing of the exposure webhook as the API server calls it: raw bytes
// POSTed to ReviewHandler, which decodes the AdmissionReview (slim-decoding
// the object in the same pass) and calls ExposureValidator. No control plane: the policy
// index is filled by hand and the cache is a fake client.
//
//	go test -run XXX -fuzz FuzzAdmissionReview -fuzztime 60s ./webhooks/
//
// Caveat: the package's TestMain (package webhooks_test) starts a control
// plane in every process of the test binary, so in every fuzz worker too.
// When the coordinator stops a worker (at the end of -fuzztime, or to
// minimize), the worker is interrupted while it stops etcd; the orphaned
// etcd keeps the worker's fuzzing pipes open and the coordinator waits for
// them forever. Until TestMain skips the control plane in fuzz mode, fuzz a
// copy of the package without the other _test.go files. Without -fuzz, the
// seeds run as ordinary tests.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/addrindex"
	"github.com/loopguard/loopguard/internal/policyindex"
)

const (
	fuzzNamespace = "shop"
	fuzzPolicy    = "LoopbackService shop/guard"
)

var (
	harnessOnce      sync.Once
	harness          http.Handler
	harnessValidator *ExposureValidator // the validator behind harness
)

// fuzzHandler returns the webhook under test: a policy protecting
// 15000/TCP (named envoy-admin), 6060-6069/TCP and 5353/UDP on app=cart
// pods of namespace shop; a cache holding a protected pod (admin on 15000)
// and a Service selecting it on 8080. Panics are not recovered, so that the
// fuzzer sees them.
func fuzzHandler(tb testing.TB) http.Handler {
	tb.Helper()
	harnessOnce.Do(func() {
		idx := policyindex.New()
		err := idx.SetLoopbackService(&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: "guard", Namespace: fuzzNamespace, UID: "guard-uid", Generation: 1},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				Ports: []v1alpha1.LoopbackPort{
					{Port: 15000, Name: "envoy-admin"},
					{Port: 6060, EndPort: ptr.To[int32](6069)},
					{Port: 5353, Protocol: corev1.ProtocolUDP},
				},
				EnforcementAction: v1alpha1.ActionDeny,
			},
		})
		if err != nil {
			panic(err)
		}
		idx.SetNamespaceLabels(fuzzNamespace, map[string]string{"kubernetes.io/metadata.name": fuzzNamespace})
		idx.MarkSynced()

		existingPod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "cart-0", Namespace: fuzzNamespace, Labels: map[string]string{"app": "cart"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "envoy", Image: "registry.invalid/envoy:1",
				Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000}, {Name: "http", ContainerPort: 8080}},
			}}},
		}
		existingSvc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: fuzzNamespace},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "cart"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		}
		reader := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(existingPod, existingSvc).
			WithIndex(&corev1.Pod{}, addrindex.PodIP, addrindex.PodIPs).Build()
		v := &ExposureValidator{Index: idx, Reader: reader, Log: logr.Discard()}
		harnessValidator = v
		harness = &ReviewHandler{Handler: panicking{v}, Log: logr.Discard()}
	})
	return harness
}

// post sends body to the webhook and returns the HTTP status and the raw
// response body.
func post(tb testing.TB, body []byte) (int, []byte) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	if len(body) == 0 {
		// What net/http's server hands a handler for Content-Length: 0.
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	fuzzHandler(tb).ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// ---------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------

var (
	podGVK     = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	podGVR     = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	serviceGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Service"}
	serviceGVR = metav1.GroupVersionResource{Version: "v1", Resource: "services"}
)

func cartPod(name string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fuzzNamespace, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/app:1"},
			{Name: "envoy", Image: "registry.invalid/envoy:1", Ports: ports},
		}},
	}
}

func running(p *corev1.Pod) *corev1.Pod { p.Status.Phase = corev1.PodRunning; return p }

func relabelled(p *corev1.Pod, app string) *corev1.Pod {
	p.Labels = map[string]string{"app": app}
	return p
}

func terminatingPod(p *corev1.Pod) *corev1.Pod {
	ts := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p.DeletionTimestamp = &ts
	return p
}

func withFinalizer(p *corev1.Pod) *corev1.Pod { p.Finalizers = []string{"example.com/hold"}; return p }

func adminService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "cart-admin", Namespace: fuzzNamespace},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "cart"},
			Ports:    []corev1.ServicePort{{Name: "admin", Port: 80, TargetPort: intstr.FromString("admin")}},
		},
	}
}

// review builds an AdmissionReview v1 request.
func review(uid string, op admissionv1.Operation, kind metav1.GroupVersionKind, res metav1.GroupVersionResource, name string, obj, old any) []byte {
	raw := func(o any) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			panic(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Kind: kind, Resource: res, RequestKind: &kind, RequestResource: &res,
			Name: name, Namespace: fuzzNamespace, Operation: op,
			UserInfo:  authUser,
			Object:    raw(obj),
			OldObject: raw(old),
			DryRun:    ptr.To(false),
		},
	}
	b, err := json.Marshal(ar)
	if err != nil {
		panic(err)
	}
	return b
}

var authUser = authenticationv1.UserInfo{Username: "alice@example.com", Groups: []string{"system:authenticated"}}

// seed is one named corpus entry.
type seed struct {
	name string
	body []byte
}

var (
	denyPodSeed = review("0b8a6c1e-deny-pod", admissionv1.Create, podGVK, podGVR, "cart-new",
		cartPod("cart-new", corev1.ContainerPort{ContainerPort: 15000}), nil)
	denyServiceSeed = review("0b8a6c1e-deny-svc", admissionv1.Create, serviceGVK, serviceGVR, "cart-admin",
		adminService(), nil)
	// The update keeps a port the old pod already exposed: not the
	// update's doing, so it passes (the audit reports it).
	updateKeepsSeed = review("0b8a6c1e-update-keeps", admissionv1.Update, podGVK, podGVR, "cart-old",
		cartPod("cart-old", corev1.ContainerPort{ContainerPort: 15000}),
		cartPod("cart-old", corev1.ContainerPort{ContainerPort: 15000}))
	// The update adds a protected port: refused.
	updateAddsSeed = review("0b8a6c1e-update-adds", admissionv1.Update, podGVK, podGVR, "cart-old",
		cartPod("cart-old", corev1.ContainerPort{ContainerPort: 8080}, corev1.ContainerPort{ContainerPort: 6065}),
		cartPod("cart-old", corev1.ContainerPort{ContainerPort: 8080}))
	allowPodSeed = review("0b8a6c1e-allow-pod", admissionv1.Create, podGVK, podGVR, "cart-ok",
		cartPod("cart-ok", corev1.ContainerPort{ContainerPort: 8080}), nil)
	deploymentSeed = review("0b8a6c1e-deploy", admissionv1.Create,
		metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "cart",
		&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: fuzzNamespace},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "cart"}},
					Spec:       cartPod("", corev1.ContainerPort{ContainerPort: 5353, Protocol: corev1.ProtocolUDP}).Spec,
				},
			},
		}, nil)
	// Relabelled out of the policy while it runs: refused (#15 hole 3).
	relabelOutSeed = review("0b8a6c1e-relabel-out", admissionv1.Update, podGVK, podGVR, "cart-0",
		relabelled(running(cartPod("cart-0")), "cart-debug"), running(cartPod("cart-0")))
	// A terminating pod is judged like any other (#15 hole 6) ...
	terminatingAddsSeed = review("0b8a6c1e-terminating-adds", admissionv1.Update, podGVK, podGVR, "cart-old",
		terminatingPod(cartPod("cart-old", corev1.ContainerPort{ContainerPort: 15000})),
		terminatingPod(cartPod("cart-old", corev1.ContainerPort{ContainerPort: 8080})))
	// ... and removing its finalizer, which changes nothing the rules
	// read, passes even when it exposes.
	finalizerRemovedSeed = review("0b8a6c1e-finalizer-removed", admissionv1.Update, podGVK, podGVR, "cart-old",
		terminatingPod(cartPod("cart-old", corev1.ContainerPort{ContainerPort: 15000})),
		withFinalizer(terminatingPod(cartPod("cart-old", corev1.ContainerPort{ContainerPort: 15000}))))
	deleteSeed = review("0b8a6c1e-delete", admissionv1.Delete, podGVK, podGVR, "cart-0",
		nil, cartPod("cart-0", corev1.ContainerPort{ContainerPort: 15000}))
	v1beta1Seed = func() []byte {
		b := bytes.Replace(denyPodSeed, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v1beta1"`), 1)
		return bytes.Replace(b, []byte("0b8a6c1e-deny-pod"), []byte("0b8a6c1e-v1beta1"), 1)
	}()
)

// Malformed reviews: the API server never sends them, the webhook must
// answer each one with an AdmissionReview that says what is wrong.
var (
	noObjectSeed = review("0b8a6c1e-no-object", admissionv1.Create, podGVK, podGVR, "cart-new", nil, nil)
	// kind says Pod, the object is a Service.
	kindMismatchSeed = review("0b8a6c1e-kind-mismatch", admissionv1.Create, podGVK, podGVR, "cart-admin",
		adminService(), nil)
	truncatedSeed = denyPodSeed[:len(denyPodSeed)*2/3]
	// A containerPort no int32 holds.
	hugeNumberSeed = bytes.Replace(denyPodSeed, []byte(`"containerPort":15000`), []byte(`"containerPort":99999999999999999999999999`), 1)
	// A float far beyond float64 where an int64 belongs.
	hugeFloatSeed = bytes.Replace(denyPodSeed, []byte(`"containerPort":15000`), []byte(`"containerPort":1e999`), 1)
	// "object": 5.
	objectNumberSeed = bytes.Replace(noObjectSeed, []byte(`"operation":"CREATE"`), []byte(`"operation":"CREATE","object":5`), 1)
	// The old object of an update that needs it is a string.
	oldObjectStringSeed = bytes.Replace(
		review("0b8a6c1e-old-string", admissionv1.Update, podGVK, podGVR, "cart-old",
			cartPod("cart-old", corev1.ContainerPort{ContainerPort: 15000}), nil),
		[]byte(`"operation":"UPDATE"`), []byte(`"operation":"UPDATE","oldObject":"cart-old"`), 1)
	// "uid": a number.
	uidNumberSeed = bytes.Replace(denyPodSeed, []byte(`"uid":"0b8a6c1e-deny-pod"`), []byte(`"uid":12345`), 1)
	// "request": a string.
	requestStringSeed = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"please"}`)
)

func seeds() []seed {
	return []seed{
		{"deny pod", denyPodSeed},
		{"deny service", denyServiceSeed},
		{"update keeps", updateKeepsSeed},
		{"update adds", updateAddsSeed},
		{"allow pod", allowPodSeed},
		{"deployment", deploymentSeed},
		{"delete", deleteSeed},
		{"relabel out", relabelOutSeed},
		{"terminating adds", terminatingAddsSeed},
		{"finalizer removed", finalizerRemovedSeed},
		{"v1beta1", v1beta1Seed},
		{"empty body", []byte{}},
		{"empty object", []byte(`{}`)},
		{"null", []byte(`null`)},
		{"no object", noObjectSeed},
		{"kind mismatch", kindMismatchSeed},
		{"truncated", truncatedSeed},
		{"huge number", hugeNumberSeed},
		{"huge float", hugeFloatSeed},
		{"object is a number", objectNumberSeed},
		{"old object is a string", oldObjectStringSeed},
		{"uid is a number", uidNumberSeed},
		{"request is a string", requestStringSeed},
		{"not JSON", []byte("\x00\x01garbage\xff")},
		// Found by the fuzzer: a body claiming another kind is answered
		// in that kind.
		{"foreign kind", []byte(`{"kind":"0"}`)},
	}
}

// ---------------------------------------------------------------------------
// Oracle
// ---------------------------------------------------------------------------

// requestOf is the oracle: it decodes body the plain way (encoding/json/v2
// with the handler's options, objects kept raw, no slim fast path) and
// applies the handler's checks, so that the fuzz target knows whether the
// webhook could read the request and which uid it carried. The handler's
// fast path must agree with it on every input.
func requestOf(body []byte) (admissionv1.AdmissionRequest, error) {
	ar, err := unmarshalReview(body, false)
	if err != nil {
		return admissionv1.AdmissionRequest{}, err
	}
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" || ar.Request == nil {
		return admissionv1.AdmissionRequest{}, errors.New("not an admission.k8s.io/v1 AdmissionReview with a request")
	}
	return *ar.Request, nil
}

// panicking lets a panic of the validator through to the fuzzer: the
// handler's recovery must not hide bugs from it.
type panicking struct{ admission.Handler }

func (p panicking) Handle(ctx context.Context, req admission.Request) admission.Response {
	defer func() {
		if r := recover(); r != nil {
			panic(fmt.Sprintf("validator panicked: %v", r))
		}
	}()
	return p.Handler.Handle(ctx, req)
}

// checkResponse asserts what holds for every body: status 200, an
// AdmissionReview with a response, the request's uid echoed, a message on
// every refusal; it returns the response.
func checkResponse(t *testing.T, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	status, out := post(t, body)
	if status != http.StatusOK {
		t.Fatalf("HTTP status %d, want 200; body %q", status, out)
	}
	var ar admissionv1.AdmissionReview
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ar); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v; body %q", err, out)
	}
	if dec.More() {
		t.Fatalf("trailing data after the AdmissionReview: %q", out)
	}
	resp := ar.Response
	if resp == nil {
		t.Fatalf("AdmissionReview without response: %q", out)
	}
	if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
		t.Fatalf("refusal without a message: %q", out)
	}
	if resp.Result != nil && resp.Result.Code != 0 && (resp.Result.Code < 200 || resp.Result.Code > 599) {
		t.Fatalf("result code %d is not an HTTP status: %q", resp.Result.Code, out)
	}
	req, err := requestOf(body)
	if err != nil {
		// Undecodable, or not a v1 review with a request: 400, saying why.
		if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
			t.Fatalf("undecodable review (%v) answered %q, want allowed=false, code 400", err, out)
		}
		return resp
	}
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" {
		t.Fatalf("answered as %s/%s: %q", ar.APIVersion, ar.Kind, out)
	}
	if resp.UID != req.UID {
		t.Fatalf("response uid %q, request uid %q: %q", resp.UID, req.UID, out)
	}
	return resp
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

func FuzzAdmissionReview(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := checkResponse(t, body)
		if bytes.Equal(body, denyPodSeed) {
			if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "15000/TCP") {
				t.Fatalf("deny seed: allowed=%v result=%+v, want a denial naming 15000/TCP", resp.Allowed, resp.Result)
			}
		}
	})
}

// TestValidReviews pins the decisions on the valid seeds.
func TestValidReviews(t *testing.T) {
	cases := []struct {
		name    string
		body    []byte
		allowed bool
		message string // exact, when refused
	}{
		{"pod exposing 15000", denyPodSeed, false,
			`pod "cart-new" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by ` + fuzzPolicy + `; remove the containerPort (the container must bind 127.0.0.1)`},
		{"service targeting the named admin port of cart-0", denyServiceSeed, false,
			`service "cart-admin" port "admin" (80) at spec.ports[0].targetPort targets the port named "admin", which reaches 15000/TCP on pod cart-0; that port is declared loopback-only by ` + fuzzPolicy + `; target a port the pods serve on their pod IP, or narrow spec.selector so it selects no protected pod`},
		{"update keeping an exposure", updateKeepsSeed, true, ""},
		{"update adding an exposure", updateAddsSeed, false,
			`pod "cart-old" container "envoy": port 6065/TCP at spec.containers[1].ports[1].containerPort is declared loopback-only by ` + fuzzPolicy + `; remove the containerPort (the container must bind 127.0.0.1)`},
		{"pod without protected ports", allowPodSeed, true, ""},
		{"deployment exposing 5353/UDP", deploymentSeed, false,
			`deployment "cart" container "envoy": port 5353/UDP at spec.template.spec.containers[1].ports[0].containerPort is declared loopback-only by ` + fuzzPolicy + `; remove the containerPort (the container must bind 127.0.0.1)`},
		{"delete", deleteSeed, true, ""},
		{"running pod relabelled out of its policy", relabelOutSeed, false,
			`pod "cart-0" is protected by ` + fuzzPolicy + `, and the label change at metadata.labels would take it out of that protection while it runs (the port-forward guard, the NetworkPolicy and the node agent cover only the pods a policy selects); delete and recreate the pod with the new labels; a running pod keeps the sockets it opened under protection`},
		{"terminating pod adding an exposure", terminatingAddsSeed, false,
			`pod "cart-old" container "envoy": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by ` + fuzzPolicy + `; remove the containerPort (the container must bind 127.0.0.1)`},
		{"finalizer removed from an exposing terminating pod", finalizerRemovedSeed, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			resp := checkResponse(t, tc.body)
			req, err := requestOf(tc.body)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.UID).To(Equal(req.UID))
			g.Expect(resp.UID).NotTo(BeEmpty())
			g.Expect(resp.Allowed).To(Equal(tc.allowed), "result: %+v", resp.Result)
			if !tc.allowed {
				g.Expect(resp.Result.Code).To(Equal(int32(http.StatusForbidden)))
				g.Expect(resp.Result.Message).To(Equal(tc.message))
			}
		})
	}
}

// TestMalformedReviews sends what no API server sends and checks that each
// is answered with an AdmissionReview that refuses it and says why, with
// the JSON pointer of what is wrong. Undecodable bodies and bodies that are
// not an admission.k8s.io/v1 AdmissionReview with a request are
// ReviewHandler's: 400 with the decoder's error; decodable reviews with an
// undecodable object are the validator's: 400 "failed to decode <Kind>: ...".
func TestMalformedReviews(t *testing.T) {
	// encoding/json/v2 words its errors "cannot" or "unable to" at random,
	// so that nobody depends on the wording: the substrings leave it out.
	notV1 := "expected an admission.k8s.io/v1 AdmissionReview"
	cases := []struct {
		name    string
		body    []byte
		code    int32
		uid     string // echoed uid; "" when the review is undecodable
		message string // substring of result.message
	}{
		{"empty body", []byte{}, http.StatusBadRequest, "", "request body is empty"},
		{"whitespace", []byte(" \n"), http.StatusBadRequest, "", "failed to decode the AdmissionReview: jsontext: unexpected EOF"},
		{"truncated JSON", truncatedSeed, http.StatusBadRequest, "", `unexpected EOF within "/request/object/metadata"`},
		{"binary", []byte("\x00\x01garbage\xff"), http.StatusBadRequest, "", `invalid character '\x00' at start of value`},
		{"a bare word", []byte("garbage"), http.StatusBadRequest, "", "invalid character 'g' at start of value"},
		{"a YAML mapping", []byte("a: b"), http.StatusBadRequest, "", "invalid character 'a' at start of value"},
		{"a number", []byte("5"), http.StatusBadRequest, "", "unmarshal JSON number into Go v1.AdmissionReview"},
		{"an array", []byte("[]"), http.StatusBadRequest, "", "unmarshal JSON array into Go v1.AdmissionReview"},
		{"{}", []byte(`{}`), http.StatusBadRequest, "", notV1 + `, got apiVersion="" kind=""`},
		{"null", []byte(`null`), http.StatusBadRequest, "", notV1},
		{"foreign kind", []byte(`{"kind":"0"}`), http.StatusBadRequest, "", notV1 + `, got apiVersion="" kind="0"`},
		{"v1beta1 review", v1beta1Seed, http.StatusBadRequest, "0b8a6c1e-v1beta1", notV1 + `, got apiVersion="admission.k8s.io/v1beta1"`},
		{"request null", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`), http.StatusBadRequest, "", "the AdmissionReview has no request"},
		{"uid is a number", uidNumberSeed, http.StatusBadRequest, "", `unmarshal JSON number into Go types.UID within "/request/uid"`},
		{"request is a string", requestStringSeed, http.StatusBadRequest, "", `unmarshal JSON string into Go v1.AdmissionRequest within "/request"`},
		{"no object", noObjectSeed, http.StatusBadRequest, "0b8a6c1e-no-object",
			"failed to decode Pod: the request carries no object"},
		{"object is a number", objectNumberSeed, http.StatusBadRequest, "0b8a6c1e-no-object",
			"failed to decode Pod: json: cannot unmarshal number into Go value of type v1.Pod"},
		{"containerPort beyond int32", hugeNumberSeed, http.StatusBadRequest, "0b8a6c1e-deny-pod",
			"failed to decode Pod: json: cannot unmarshal number 99999999999999999999999999 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"},
		{"containerPort 1e999", hugeFloatSeed, http.StatusBadRequest, "0b8a6c1e-deny-pod",
			"failed to decode Pod: json: cannot unmarshal number 1e999 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"},
		{"old object is a string", oldObjectStringSeed, http.StatusBadRequest, "0b8a6c1e-old-string",
			"failed to decode old Pod: json: cannot unmarshal string into Go value of type v1.Pod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			resp := checkResponse(t, tc.body)
			g.Expect(resp.Allowed).To(BeFalse())
			g.Expect(resp.Result).NotTo(BeNil())
			g.Expect(resp.Result.Code).To(Equal(tc.code))
			g.Expect(resp.Result.Message).To(ContainSubstring(tc.message))
			g.Expect(string(resp.UID)).To(Equal(tc.uid))
		})
	}
}

// TestLenientReviews pins what the webhook does with a review whose object
// does not match its kind: the object is decoded leniently (unknown fields
// ignored) into the kind the request names, which here holds no container,
// so it passes. A real API server never sends one.
func TestLenientReviews(t *testing.T) {
	g := NewWithT(t)
	resp := checkResponse(t, kindMismatchSeed)
	g.Expect(resp.Allowed).To(BeTrue(), "result: %+v", resp.Result)
}

// TestFastPathAgreesWithPlainDecode: the slim decode in passing (objects
// decoded while the review is read) and the plain decode (objects kept raw,
// decoded by the validator) give the same decision for every seed.
func TestFastPathAgreesWithPlainDecode(t *testing.T) {
	for _, s := range seeds() {
		t.Run(s.name, func(t *testing.T) {
			fast, errFast := unmarshalReview(s.body, true)
			plain, errPlain := unmarshalReview(s.body, false)
			if errPlain != nil || plain.Request == nil {
				return // undecodable: the handler falls back to the plain decode's answer
			}
			if errFast != nil {
				t.Logf("fast path failed (%v): the handler falls back to the plain decode", errFast)
				return
			}
			h := fuzzHandler(t).(*ReviewHandler)
			a := h.handle(context.Background(), admission.Request{AdmissionRequest: *fast.Request})
			b := h.handle(context.Background(), admission.Request{AdmissionRequest: *plain.Request})
			if a.Allowed != b.Allowed || fmt.Sprint(a.Result) != fmt.Sprint(b.Result) {
				t.Fatalf("fast path: allowed=%v %+v; plain: allowed=%v %+v", a.Allowed, a.Result, b.Allowed, b.Result)
			}
		})
	}
}

// TestDenialMessageVerbatimNames checks that the names in a denial are
// quoted verbatim. A real API server validates container names before
// validating admission, but the rules are shared with the CLI, which reads
// unvalidated manifests, and a name is data, never a format.
func TestDenialMessageVerbatimNames(t *testing.T) {
	g := NewWithT(t)
	pod := cartPod("cart-pct", corev1.ContainerPort{ContainerPort: 15000})
	pod.Spec.Containers[1].Name = "envoy-%d-%s"
	body := review("0b8a6c1e-pct", admissionv1.Create, podGVK, podGVR, "cart-pct", pod, nil)
	resp := checkResponse(t, body)
	g.Expect(resp.Allowed).To(BeFalse())
	want := fmt.Sprintf(`pod "cart-pct" container "envoy-%%d-%%s": port 15000/TCP at spec.containers[1].ports[0].containerPort is declared loopback-only by %s; remove the containerPort (the container must bind 127.0.0.1)`, fuzzPolicy)
	g.Expect(resp.Result.Message).To(Equal(want), "got:  %s\nwant: %s", resp.Result.Message, want)
}
