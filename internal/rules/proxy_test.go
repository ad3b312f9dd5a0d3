package rules

import (
	corev1 "k8s.io/api/core/v1"

	"testing"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
)

func TestParseProxyTarget(t *testing.T) {
	cases := []struct {
		id   string
		want ProxyTarget
		ok   bool
	}{
		{"cart", ProxyTarget{Name: "cart"}, true},
		{"cart:15000", ProxyTarget{Name: "cart", Port: "15000"}, true},
		{"https:cart:15000", ProxyTarget{Scheme: "https", Name: "cart", Port: "15000"}, true},
		{"http:cart:", ProxyTarget{Scheme: "http", Name: "cart"}, true},
		{"ftp:cart:21", ProxyTarget{}, false},
		{"a:b:c:d", ProxyTarget{}, false},
	}
	for _, tc := range cases {
		got, ok := ParseProxyTarget(tc.id)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseProxyTarget(%q) = %+v, %v; want %+v, %v", tc.id, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEvaluatePodProxy(t *testing.T) {
	guard := nsPolicy(t, "shop", "guard", podSelector("app", "cart"), protects(15000), protects(6060, through(6069)))
	breakGlass := nsPolicy(t, "shop", "guard", podSelector("app", "cart"), protects(15000), func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.PortForward = &v1alpha1.PortForwardSpec{Allowed: []v1alpha1.Subject{{Kind: v1alpha1.SubjectUser, Name: "alice"}}}
	})
	audit := nsPolicy(t, "shop", "guard", podSelector("app", "cart"), protects(15000), func(s *v1alpha1.ClusterLoopbackServiceSpec) {
		s.PortForward = &v1alpha1.PortForwardSpec{Action: v1alpha1.PortForwardAudit}
	})
	cart := pod("cart", withLabels("app", "cart"), withContainer("app", port(8080)))
	bare := pod("cart", withLabels("app", "cart"), withContainer("app"))
	firstPort15000 := pod("cart", withLabels("app", "cart"), withContainer("envoy", port(15000)), withContainer("app", port(8080)))
	web := pod("web", withLabels("app", "web"), withContainer("app", port(15000)))
	bob := Requester{Username: "bob"}
	cases := []struct {
		name   string
		policy *Policy
		pod    string
		target ProxyTarget
		who    Requester
		want   v1alpha1.AccessAction
		port   string
	}{
		{"a protected port", guard, "cart", ProxyTarget{Name: "cart", Port: "15000"}, bob, v1alpha1.AccessDeny, "15000"},
		{"in a protected range", guard, "cart", ProxyTarget{Name: "cart", Port: "6065"}, bob, v1alpha1.AccessDeny, "6065"},
		{"with a scheme", guard, "cart", ProxyTarget{Scheme: "https", Name: "cart", Port: "15000"}, bob, v1alpha1.AccessDeny, "15000"},
		{"leading zeros are the same port", guard, "cart", ProxyTarget{Name: "cart", Port: "015000"}, bob, v1alpha1.AccessDeny, "015000"},
		{"a port name the API server resolves itself", guard, "cart", ProxyTarget{Name: "cart", Port: "envoy-admin"}, bob, v1alpha1.AccessDeny, "envoy-admin"},
		{"an unprotected port", guard, "cart", ProxyTarget{Name: "cart", Port: "8080"}, bob, "", "8080"},
		{"no port: the first containerPort", guard, "cart", ProxyTarget{Name: "cart"}, bob, "", "8080"},
		{"no port: the first containerPort, protected", guard, "first", ProxyTarget{Name: "cart"}, bob, v1alpha1.AccessDeny, "15000"},
		{"no port and none declared: 80", guard, "bare", ProxyTarget{Name: "cart"}, bob, "", "80"},
		{"an unprotected pod", guard, "web", ProxyTarget{Name: "web", Port: "15000"}, bob, "", "15000"},
		{"an allowed subject passes, audited", breakGlass, "cart", ProxyTarget{Name: "cart", Port: "15000"}, Requester{Username: "alice"}, v1alpha1.AccessAudit, "15000"},
		{"portForward Audit audits", audit, "cart", ProxyTarget{Name: "cart", Port: "15000"}, bob, v1alpha1.AccessAudit, "15000"},
	}
	pods := map[string]*corev1.Pod{"cart": cart, "bare": bare, "first": firstPort15000, "web": web}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := EvaluatePodProxy(shopEnv(tc.policy), podview.Of(pods[tc.pod]), tc.target, tc.who)
			if d.Action != tc.want || d.Port != tc.port {
				t.Fatalf("got action %q port %q, want %q port %q", d.Action, d.Port, tc.want, tc.port)
			}
		})
	}
}

func TestEvaluateServiceProxy(t *testing.T) {
	guard := nsPolicy(t, "shop", "guard", podSelector("app", "cart"), protects(15000))
	named := nsPolicy(t, "shop", "named", podSelector("app", "cart"), protects(9901, lpName("admin")))
	pods := []*corev1.Pod{
		pod("cart-1", withLabels("app", "cart"), withContainer("app", port(8080, portName("http")), port(15000, portName("envoy")))),
		pod("cart-0", withLabels("app", "cart"), withContainer("app", port(8080, portName("http")), port(15000, portName("envoy")))),
		pod("web-0", withLabels("app", "web"), withContainer("app", port(15000, portName("envoy")))),
		pod("other", inNamespace("elsewhere"), withLabels("app", "cart"), withContainer("app", port(15000))),
	}
	svc := service("admin", selector("app", "cart"),
		servicePort(80, spName("admin"), targetPort(15000)),
		servicePort(8080, spName("web"), targetPort(8080)),
		servicePort(9000, spName("named"), targetPortName("envoy")),
		servicePort(9001, spName("byname"), targetPortName("admin")),
		servicePort(15000, spName("udp"), spProtocol("UDP")))
	unnamed := service("admin", selector("app", "cart"), servicePort(15000))
	webSvc := service("web", selector("app", "web"), servicePort(80, targetPort(15000)))
	noSelector := service("admin", servicePort(80, targetPort(15000)))
	bob := Requester{Username: "bob"}
	cases := []struct {
		name     string
		svc      *corev1.Service
		port     string
		want     v1alpha1.AccessAction
		pod, hit string
	}{
		{"by port number", svc, "80", v1alpha1.AccessDeny, "cart-0", "15000"},
		{"by port name", svc, "admin", v1alpha1.AccessDeny, "cart-0", "15000"},
		{"to a named target", svc, "named", v1alpha1.AccessDeny, "cart-0", "15000"},
		{"to a target named by a policy", svc, "byname", v1alpha1.AccessDeny, "cart-0", "9901"},
		{"a UDP port is still proxied over TCP", svc, "udp", v1alpha1.AccessDeny, "cart-0", "15000"},
		{"an unprotected target", svc, "web", "", "", ""},
		{"a port the Service does not have", svc, "81", "", "", ""},
		{"no port: the unnamed port", unnamed, "", v1alpha1.AccessDeny, "cart-0", "15000"},
		{"no port, none unnamed", svc, "", "", "", ""},
		{"pods no policy protects", webSvc, "80", "", "", ""},
		{"a Service without a selector", noSelector, "80", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := EvaluateServiceProxy(shopEnv(guard, named), tc.svc, ProxyTarget{Name: tc.svc.Name, Port: tc.port}, views(pods...), bob)
			if d.Action != tc.want || d.Pod != tc.pod || d.Port != tc.hit || d.Service != tc.svc.Name {
				t.Fatalf("got action %q pod %q port %q service %q, want %q %q %q %q", d.Action, d.Pod, d.Port, d.Service, tc.want, tc.pod, tc.hit, tc.svc.Name)
			}
		})
	}
}
