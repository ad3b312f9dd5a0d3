package webhooks

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/internal/rules"
)

func TestAccessOf(t *testing.T) {
	pods := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	services := metav1.GroupVersionResource{Version: "v1", Resource: "services"}
	other := metav1.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "pods"}
	cases := []struct {
		op     admissionv1.Operation
		res    metav1.GroupVersionResource
		sub    string
		want   rules.Access
		judged bool
	}{
		{admissionv1.Connect, pods, "portforward", rules.AccessPortForward, true},
		{admissionv1.Connect, pods, "exec", rules.AccessExec, true},
		{admissionv1.Connect, pods, "attach", rules.AccessAttach, true},
		{admissionv1.Connect, pods, "proxy", rules.AccessProxy, true},
		{admissionv1.Connect, services, "proxy", rules.AccessProxy, true},
		{admissionv1.Update, pods, "ephemeralcontainers", rules.AccessDebug, true},
		{admissionv1.Update, pods, "", "", false},
		{admissionv1.Update, pods, "status", "", false},
		{admissionv1.Connect, services, "exec", "", false},
		{admissionv1.Connect, other, "exec", "", false},
		{admissionv1.Create, pods, "exec", "", false},
	}
	for _, tc := range cases {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: tc.op, Resource: tc.res, SubResource: tc.sub}}
		got, ok := accessOf(req)
		if got != tc.want || ok != tc.judged {
			t.Errorf("%s %s/%s: got %q %v, want %q %v", tc.op, tc.res.Resource, tc.sub, got, ok, tc.want, tc.judged)
		}
	}
}

func TestEphemeralChange(t *testing.T) {
	pod := func(s string) runtime.RawExtension { return runtime.RawExtension{Raw: []byte(s)} }
	before := pod(`{"metadata":{"labels":{"app":"cart"}},"spec":{"ephemeralContainers":[{"name":"a"}]}}`)
	cases := []struct {
		name     string
		old, new runtime.RawExtension
		added    bool
		app      string
		err      bool
	}{
		{"adds one", before, pod(`{"metadata":{"labels":{"app":"web"}},"spec":{"ephemeralContainers":[{"name":"a"},{"name":"b"}]}}`), true, "cart", false},
		{"the first one", pod(`{"metadata":{"labels":{"app":"cart"}},"spec":{}}`), pod(`{"spec":{"ephemeralContainers":[{"name":"a"}]}}`), true, "cart", false},
		{"adds none", before, before, false, "cart", false},
		{"no old object: the new one's labels", runtime.RawExtension{}, before, true, "cart", false},
		{"not a pod", before, pod(`{"spec":{"ephemeralContainers":"x"}}`), false, "", true},
		{"not JSON", before, pod(`{`), false, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{OldObject: tc.old, Object: tc.new}}
			labels, added, err := ephemeralChange(req)
			if (err != nil) != tc.err || added != tc.added || labels["app"] != tc.app {
				t.Fatalf("got labels %v added %v err %v", labels, added, err)
			}
		})
	}
}

func TestEventAction(t *testing.T) {
	if got := eventAction("Exec", "alice"); got != "Exec by alice" {
		t.Errorf("got %q", got)
	}
	long1, long2 := eventAction("Exec", strings.Repeat("u", 200)+"1"), eventAction("Exec", strings.Repeat("u", 200)+"2")
	if len(long1) != maxEventAction || long1 == long2 {
		t.Errorf("long users: %q (%d) and %q must differ and fit %d", long1, len(long1), long2, maxEventAction)
	}
	// An attacker whose authenticator lets them pick a user name takes the
	// victim's cut action as theirs: the hash needs no secret. Their
	// accesses must not join the victim's Event series.
	victim := strings.Repeat("v", 200)
	forged := strings.TrimPrefix(eventAction("Exec", victim), "Exec by ")
	if forged == victim {
		t.Fatal("the victim's action is not cut")
	}
	if a, b := eventAction("Exec", forged), eventAction("Exec", victim); a == b {
		t.Errorf("user %q shares the action %q of a different user", forged, a)
	}
}
