package rules

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

func TestEvaluatePortForward(t *testing.T) {
	mk := func(name string, pf *v1alpha1.PortForwardSpec) *Policy {
		p, err := Compile(&v1alpha1.LoopbackService{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec: v1alpha1.LoopbackServiceSpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
				Ports:       []v1alpha1.LoopbackPort{{Port: 15000, Protocol: corev1.ProtocolTCP}},
				PortForward: pf,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	breakGlass := &v1alpha1.PortForwardSpec{Allowed: []v1alpha1.Subject{
		{Kind: v1alpha1.SubjectGroup, Name: "sre"},
		{Kind: v1alpha1.SubjectUser, Name: "alice"},
		{Kind: v1alpha1.SubjectServiceAccount, Namespace: "ops", Name: "debugger"},
	}}
	cases := []struct {
		name     string
		policies []*Policy
		labels   map[string]string
		who      Requester
		want     v1alpha1.PortForwardAction
		denying  int
	}{
		{"no policy selects the pod", []*Policy{mk("a", nil)}, map[string]string{"app": "web"}, Requester{Username: "bob"}, "", 0},
		{"default is Deny", []*Policy{mk("a", nil)}, map[string]string{"app": "cart"}, Requester{Username: "bob"}, v1alpha1.PortForwardDeny, 1},
		{"allowed group passes, audited", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "bob", Groups: []string{"sre"}}, v1alpha1.PortForwardAudit, 0},
		{"allowed user passes", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "alice"}, v1alpha1.PortForwardAudit, 0},
		{"allowed service account passes", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "system:serviceaccount:ops:debugger"}, v1alpha1.PortForwardAudit, 0},
		{"same SA name in another namespace does not", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "system:serviceaccount:dev:debugger"}, v1alpha1.PortForwardDeny, 1},
		{"Audit admits", []*Policy{mk("a", &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardAudit})}, map[string]string{"app": "cart"}, Requester{Username: "bob"}, v1alpha1.PortForwardAudit, 0},
		{"Allow admits", []*Policy{mk("a", &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardAllow})}, map[string]string{"app": "cart"}, Requester{Username: "bob"}, v1alpha1.PortForwardAllow, 0},
		{"strictest wins: allowed by one, denied by another", []*Policy{mk("a", breakGlass), mk("b", nil)}, map[string]string{"app": "cart"}, Requester{Username: "alice"}, v1alpha1.PortForwardDeny, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := &Env{Namespace: "shop", Sets: []*Set{NewSet(tc.policies)}}
			d := EvaluatePortForward(env, tc.labels, tc.who)
			if d.Action != tc.want || len(d.Denying) != tc.denying {
				t.Fatalf("got action %q denying %v, want %q and %d denying", d.Action, d.Denying, tc.want, tc.denying)
			}
		})
	}
}
