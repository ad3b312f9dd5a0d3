package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// fuzzKinds are the kinds the exposure webhook judges from a pod template or
// a Service, as the fuzzer picks them.
var fuzzKinds = []struct {
	gvk metav1.GroupVersionKind
	gvr metav1.GroupVersionResource
	new func() runtime.Object
}{
	{podGVK, podGVR, func() runtime.Object { return &corev1.Pod{} }},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, func() runtime.Object { return &appsv1.Deployment{} }},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, func() runtime.Object { return &appsv1.ReplicaSet{} }},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, func() runtime.Object { return &appsv1.StatefulSet{} }},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, func() runtime.Object { return &appsv1.DaemonSet{} }},
	{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, func() runtime.Object { return &batchv1.Job{} }},
	{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, func() runtime.Object { return &batchv1.CronJob{} }},
	{metav1.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, metav1.GroupVersionResource{Version: "v1", Resource: "replicationcontrollers"}, func() runtime.Object { return &corev1.ReplicationController{} }},
	{serviceGVK, serviceGVR, func() runtime.Object { return &corev1.Service{} }},
}

// FuzzSlimDecodeAgrees is a differential oracle for the fast decoding: for
// every object the full decoder (encoding/json into the typed object)
// accepts, written back as the API server would write it, the webhook
// answers the same (allowed, code, message, warnings) whether it is handed
// the fully decoded object, the raw bytes (decodeSlim), or the whole
// AdmissionReview over HTTP (the objects slim-decoded while the review is
// read). Bytes only the slim decoder reads differently (member names in
// another case, which encoding/json folds) are not objects the API server
// sends; writing the object back first leaves them out.
func FuzzSlimDecodeAgrees(f *testing.F) {
	pod := `{"metadata":{"name":"p","namespace":"shop","labels":{"app":"cart"}},"spec":{"containers":[{"name":"envoy","ports":[{"name":"admin","containerPort":15000}]}]}}`
	tmpl := `{"metadata":{"labels":{"app":"cart"}},"spec":{"hostNetwork":%s,"initContainers":[{"name":"s","restartPolicy":"Always","ports":[{"containerPort":6065,"hostPort":1}]}],"containers":[{"name":"c","ports":[{"containerPort":5353,"protocol":"UDP"},{"containerPort":8080}]}]}}`
	for _, s := range []struct {
		kind     uint8
		update   bool
		obj, old string
	}{
		{0, false, pod, ""},
		{0, true, pod, `{"metadata":{"name":"p","labels":{"app":"web"}},"spec":{"containers":[{"name":"envoy","ports":[{"containerPort":15000}]}]}}`},
		{0, false, `{"metadata":{"name":"p","labels":{"app":"cart"},"deletionTimestamp":"2026-01-02T03:04:05Z"},"spec":{"ephemeralContainers":[{"name":"d","ports":[{"containerPort":6060}]}]},"status":{"phase":"Running"}}`, ""},
		{0, false, `{"metadata":{"name":"p","labels":{"app":"cart"}},"spec":{"hostNetwork":true,"containers":[{"name":"c"}]},"status":{"phase":"Succeeded"}}`, ""},
		{0, false, `{"metadata":{"n\u0061me":"p","labels":{"app":"cart"}},"spec":{"containers":[{"name":"x"}],"containers":[{"name":"y","ports":[{"containerPort":15000}]}]}}`, ""},
		{1, false, `{"metadata":{"name":"d"},"spec":{"template":` + fmt.Sprintf(tmpl, "false") + `}}`, ""},
		{1, true, `{"metadata":{"name":"d"},"spec":{"template":` + fmt.Sprintf(tmpl, "true") + `}}`, `{"metadata":{"name":"d"},"spec":{"template":` + fmt.Sprintf(tmpl, "false") + `}}`},
		{3, false, `{"metadata":{"name":"s"},"spec":{"template":` + fmt.Sprintf(tmpl, "false") + `}}`, ""},
		{6, false, `{"metadata":{"name":"cj"},"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":` + fmt.Sprintf(tmpl, "false") + `}}}}`, ""},
		{7, false, `{"metadata":{"name":"rc"},"spec":{"template":` + fmt.Sprintf(tmpl, "false") + `}}`, ""},
		{7, false, `{"metadata":{"name":"rc"},"spec":{}}`, ""},
		{8, false, `{"metadata":{"name":"cart-admin"},"spec":{"selector":{"app":"cart"},"ports":[{"port":80,"targetPort":"admin"}]}}`, ""},
		{8, true, `{"metadata":{"name":"cart"},"spec":{"type":"NodePort","selector":{"app":"cart"},"ports":[{"port":80,"targetPort":15000}]}}`, `{"metadata":{"name":"cart"},"spec":{"selector":{"app":"cart"},"ports":[{"port":80,"targetPort":8080}]}}`},
	} {
		f.Add(s.kind, s.update, []byte(s.obj), []byte(s.old))
	}
	f.Fuzz(func(t *testing.T, kind uint8, update bool, obj, old []byte) {
		k := fuzzKinds[int(kind)%len(fuzzKinds)]
		// canonical decodes b fully, as the API server holds the object,
		// and writes it back as the API server would send it.
		canonical := func(b []byte) ([]byte, runtime.Object, bool) {
			o := k.new()
			if json.Unmarshal(b, o) != nil {
				return nil, nil, false
			}
			c, err := json.Marshal(o)
			if err != nil {
				return nil, nil, false
			}
			full := k.new()
			if err := json.Unmarshal(c, full); err != nil {
				t.Fatalf("the written object does not decode: %v\n%s", err, c)
			}
			return c, full, true
		}
		raw, full, ok := canonical(obj)
		if !ok {
			return
		}
		op, rawOld, fullOld := admissionv1.Create, []byte(nil), runtime.Object(nil)
		if update {
			if rawOld, fullOld, ok = canonical(old); !ok {
				return
			}
			op = admissionv1.Update
		}
		fuzzHandler(t)
		request := func(o, oo runtime.RawExtension) admission.Request {
			return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				UID: "differential", Kind: k.gvk, Resource: k.gvr, RequestKind: &k.gvk, RequestResource: &k.gvr,
				Name: "x", Namespace: fuzzNamespace, Operation: op, UserInfo: authUser, Object: o, OldObject: oo,
			}}
		}
		ctx := context.Background()
		want := harnessValidator.Handle(ctx, request(runtime.RawExtension{Object: full}, runtime.RawExtension{Object: fullOld}))
		got := harnessValidator.Handle(ctx, request(runtime.RawExtension{Raw: raw}, runtime.RawExtension{Raw: rawOld}))
		if a, b := answer(want.AdmissionResponse), answer(got.AdmissionResponse); a != b {
			t.Fatalf("decodeSlim changes the answer to %s %s\nfull: %s\nslim: %s\nobject: %s\nold: %s", op, k.gvk.Kind, a, b, raw, rawOld)
		}

		var oldAny any
		if update {
			oldAny = json.RawMessage(rawOld)
		}
		code, body := post(t, review("differential", op, k.gvk, k.gvr, "x", json.RawMessage(raw), oldAny))
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &out); err != nil || code != 200 || out.Response == nil {
			t.Fatalf("HTTP %d, %v: %s", code, err, body)
		}
		if a, b := answer(want.AdmissionResponse), answer(*out.Response); a != b {
			t.Fatalf("the review's in-stream slim decoding changes the answer to %s %s\nfull: %s\nslim: %s\nobject: %s\nold: %s", op, k.gvk.Kind, a, b, raw, rawOld)
		}
	})
}

// answer is what the API server and the user see of a response.
func answer(r admissionv1.AdmissionResponse) string {
	var st metav1.Status
	if r.Result != nil {
		st = *r.Result
	}
	if st.Code == 0 {
		st.Code = 200 // as ReviewHandler writes it
	}
	return fmt.Sprintf("allowed=%t warnings=%q code=%d reason=%q message=%q", r.Allowed, r.Warnings, st.Code, st.Reason, st.Message)
}
