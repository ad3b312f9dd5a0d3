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
		want     v1alpha1.AccessAction
		denying  int
	}{
		{"no policy selects the pod", []*Policy{mk("a", nil)}, map[string]string{"app": "web"}, Requester{Username: "bob"}, "", 0},
		{"default is Deny", []*Policy{mk("a", nil)}, map[string]string{"app": "cart"}, Requester{Username: "bob"}, v1alpha1.AccessDeny, 1},
		{"allowed group passes, audited", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "bob", Groups: []string{"sre"}}, v1alpha1.AccessAudit, 0},
		{"allowed user passes", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "alice"}, v1alpha1.AccessAudit, 0},
		{"allowed service account passes", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "system:serviceaccount:ops:debugger"}, v1alpha1.AccessAudit, 0},
		{"same SA name in another namespace does not", []*Policy{mk("a", breakGlass)}, map[string]string{"app": "cart"}, Requester{Username: "system:serviceaccount:dev:debugger"}, v1alpha1.AccessDeny, 1},
		{"Audit admits", []*Policy{mk("a", &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardAudit})}, map[string]string{"app": "cart"}, Requester{Username: "bob"}, v1alpha1.AccessAudit, 0},
		{"Allow admits", []*Policy{mk("a", &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardAllow})}, map[string]string{"app": "cart"}, Requester{Username: "bob"}, v1alpha1.AccessAllow, 0},
		{"strictest wins: allowed by one, denied by another", []*Policy{mk("a", breakGlass), mk("b", nil)}, map[string]string{"app": "cart"}, Requester{Username: "alice"}, v1alpha1.AccessDeny, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := &Env{Namespace: "shop", Sets: []*Set{NewSet(tc.policies)}}
			d := EvaluateAccess(env, tc.labels, tc.who, AccessPortForward)
			if d.Action != tc.want || len(d.Denying) != tc.denying {
				t.Fatalf("got action %q denying %v, want %q and %d denying", d.Action, d.Denying, tc.want, tc.denying)
			}
		})
	}
}

// accessSpec sets spec.exec (exec and attach) and spec.debug.
func accessSpec(exec, debug *v1alpha1.AccessSpec) specOpt {
	return func(s *v1alpha1.ClusterLoopbackServiceSpec) { s.Exec, s.Debug = exec, debug }
}

func TestEvaluateAccess(t *testing.T) {
	oncall := []v1alpha1.Subject{{Kind: v1alpha1.SubjectGroup, Name: "sre"}}
	deny := &v1alpha1.AccessSpec{Action: v1alpha1.AccessDeny, Allowed: oncall}
	denyNoAction := &v1alpha1.AccessSpec{Allowed: oncall} // action defaults to Audit
	allow := &v1alpha1.AccessSpec{Action: v1alpha1.AccessAllow}
	cart := kv("app", "cart")
	bob, sre := Requester{Username: "bob"}, Requester{Username: "carol", Groups: []string{"sre"}}
	cases := []struct {
		name     string
		policies []*Policy
		labels   map[string]string
		who      Requester
		access   Access
		want     v1alpha1.AccessAction
		denying  []string
	}{
		{"exec: unprotected pod", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000))}, kv("app", "web"), bob, AccessExec, "", nil},
		{"exec: defaults to Audit", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000))}, cart, bob, AccessExec, v1alpha1.AccessAudit, nil},
		{"attach: defaults to Audit", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000))}, cart, bob, AccessAttach, v1alpha1.AccessAudit, nil},
		{"debug: defaults to Audit", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000))}, cart, bob, AccessDebug, v1alpha1.AccessAudit, nil},
		{"port-forward still defaults to Deny", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000))}, cart, bob, AccessPortForward, v1alpha1.AccessDeny, []string{"LoopbackService shop/a"}},
		{"exec: Deny refuses", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(deny, nil))}, cart, bob, AccessExec, v1alpha1.AccessDeny, []string{"LoopbackService shop/a"}},
		{"attach answers to spec.exec", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(deny, nil))}, cart, bob, AccessAttach, v1alpha1.AccessDeny, []string{"LoopbackService shop/a"}},
		{"debug is not governed by spec.exec", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(deny, nil))}, cart, bob, AccessDebug, v1alpha1.AccessAudit, nil},
		{"debug: Deny refuses", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(nil, deny))}, cart, bob, AccessDebug, v1alpha1.AccessDeny, []string{"LoopbackService shop/a"}},
		{"exec: an allowed group passes, audited", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(deny, deny))}, cart, sre, AccessExec, v1alpha1.AccessAudit, nil},
		{"debug: an allowed group passes, audited", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(deny, deny))}, cart, sre, AccessDebug, v1alpha1.AccessAudit, nil},
		{"allowed without action is Audit", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(denyNoAction, nil))}, cart, bob, AccessExec, v1alpha1.AccessAudit, nil},
		{"Allow admits", []*Policy{nsPolicy(t, "shop", "a", podSelector("app", "cart"), protects(15000), accessSpec(allow, allow))}, cart, bob, AccessExec, v1alpha1.AccessAllow, nil},
		{"strictest wins: a cluster policy's Deny over a tenant's Allow",
			[]*Policy{
				nsPolicy(t, "shop", "mine", podSelector("app", "cart"), protects(8080), accessSpec(allow, allow)),
				clusterPolicy(t, "platform", nsSelector("team", "shop"), protects(15000), accessSpec(deny, deny)),
			}, cart, bob, AccessExec, v1alpha1.AccessDeny, []string{"ClusterLoopbackService platform"}},
		{"a cluster policy outside its namespaces is not involved",
			[]*Policy{clusterPolicy(t, "platform", nsSelector("team", "other"), protects(15000), accessSpec(deny, deny))}, cart, bob, AccessExec, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := EvaluateAccess(shopEnv(tc.policies...), tc.labels, tc.who, tc.access)
			if d.Action != tc.want || !equalRefs(d.Denying, tc.denying) {
				t.Fatalf("got action %q denying %v, want %q denying %v", d.Action, d.Denying, tc.want, tc.denying)
			}
		})
	}
}

func equalRefs(refs []PolicyRef, want []string) bool {
	if len(refs) != len(want) {
		return false
	}
	for i, r := range refs {
		if r.String() != want[i] {
			return false
		}
	}
	return true
}

func TestAccessMessageAndNote(t *testing.T) {
	ref := PolicyRef{Kind: KindLoopbackService, Namespace: "shop", Name: "guard"}
	cases := []struct {
		d       AccessDecision
		pod     string
		message string
		note    string
	}{
		{AccessDecision{Access: AccessPortForward, Action: v1alpha1.AccessDeny, Denying: []PolicyRef{ref}}, "cart",
			"port-forward to pod shop/cart is refused: LoopbackService shop/guard declares ports of this pod loopback-only, and a port-forward reaches the pod's loopback whatever ports it names; use a Service port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed",
			`port-forward by "bob" to pod shop/cart: deny`},
		{AccessDecision{Access: AccessExec, Action: v1alpha1.AccessDeny, Denying: []PolicyRef{ref}}, "cart",
			"exec into pod shop/cart is refused: LoopbackService shop/guard declares ports of this pod loopback-only, and a process started in the pod reaches its loopback; ask for your user or group to be added to spec.exec.allowed",
			`exec by "bob" to pod shop/cart: deny`},
		{AccessDecision{Access: AccessAttach, Action: v1alpha1.AccessAudit}, "cart", "", `attach by "bob" to pod shop/cart: audit`},
		{AccessDecision{Access: AccessDebug, Action: v1alpha1.AccessDeny, Denying: []PolicyRef{ref}}, "cart",
			"an ephemeral container (kubectl debug) in pod shop/cart is refused: LoopbackService shop/guard declares ports of this pod loopback-only, and an ephemeral container shares the pod's network namespace, and so its loopback; ask for your user or group to be added to spec.debug.allowed",
			`debug by "bob" to pod shop/cart: deny`},
		{AccessDecision{Access: AccessProxy, Action: v1alpha1.AccessDeny, Denying: []PolicyRef{ref}, Pod: "cart", Port: "15000"}, "cart:15000",
			"proxy to port 15000 of pod shop/cart is refused: LoopbackService shop/guard declares this port loopback-only, and the API server's proxy reaches it on the pod IP past every NetworkPolicy; use a port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed",
			`proxy by "bob" to pod shop/cart port 15000: deny`},
		{AccessDecision{Access: AccessProxy, Action: v1alpha1.AccessDeny, Denying: []PolicyRef{ref}, Pod: "cart-0", Port: "15000", Service: "admin"}, "admin:80",
			"proxy through service shop/admin to port 15000 of pod shop/cart-0 is refused: LoopbackService shop/guard declares this port loopback-only, and the API server's proxy reaches it on the pod IP past every NetworkPolicy; use a port the pod serves on its pod IP, or ask for your user or group to be added to spec.portForward.allowed",
			`proxy by "bob" to pod shop/cart-0 port 15000 through service shop/admin: deny`},
	}
	for _, tc := range cases {
		t.Run(string(tc.d.Access), func(t *testing.T) {
			if tc.message != "" {
				if got := tc.d.Message("shop", tc.pod); got != tc.message {
					t.Errorf("Message:\n got %s\nwant %s", got, tc.message)
				}
			}
			if got := tc.d.Note("bob", "shop", tc.pod); got != tc.note {
				t.Errorf("Note:\n got %s\nwant %s", got, tc.note)
			}
		})
	}
}
