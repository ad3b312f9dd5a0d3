package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/loopguard/loopguard/internal/metricsauth"
)

// TestMetricsGuard drives the metrics endpoint's filter with real tokens
// and real RBAC: the ServiceAccount bound to config/rbac's metrics-reader
// role reads /metrics, one without the binding is forbidden, a token the
// API server does not accept (or none) is unauthorized, and an API server
// that cannot be reached is an error, never access.
func TestMetricsGuard(t *testing.T) {
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ns := fmt.Sprintf("metricsauth-%d", time.Now().UnixNano()%1_000_000)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	token := func(sa string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Status.Token
	}
	scraper, nobody := token("scraper"), token("nobody")
	// The metrics-reader ClusterRole as config/rbac ships it.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-scraper"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"}}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{})
	})

	guarded := func(cfg *rest.Config) http.Handler {
		t.Helper()
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		filter, err := metricsauth.Provider(cfg, hc)
		if err != nil {
			t.Fatal(err)
		}
		h, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				t.Error("the handler saw the caller's token")
			}
			_, _ = io.WriteString(w, "metrics")
		}))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	serve := func(h http.Handler, method, path, authorization string) (int, string) {
		req := httptest.NewRequest(method, "https://manager:8443"+path, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}

	h := guarded(env.Config)
	for _, c := range []struct {
		name, method, path, authorization string
		code                              int
		body                              string
	}{
		{"bound ServiceAccount", "GET", "/metrics", "Bearer " + scraper, http.StatusOK, "metrics"},
		{"bearer scheme in lower case", "GET", "/metrics", "bearer " + scraper, http.StatusOK, "metrics"},
		{"no token", "GET", "/metrics", "", http.StatusUnauthorized, "Unauthorized: a bearer token is required"},
		{"basic auth", "GET", "/metrics", "Basic c2NyYXBlcjpzZWNyZXQ=", http.StatusUnauthorized, "Unauthorized: a bearer token is required"},
		{"forged token", "GET", "/metrics", "Bearer " + scraper[:len(scraper)-4] + "AAAA", http.StatusUnauthorized, "Unauthorized"},
		{"unbound ServiceAccount", "GET", "/metrics", "Bearer " + nobody, http.StatusForbidden, "Authorization denied for user system:serviceaccount:" + ns + ":nobody"},
		{"another path", "GET", "/debug/pprof/", "Bearer " + scraper, http.StatusForbidden, "Authorization denied for user system:serviceaccount:" + ns + ":scraper"},
		{"another verb", "POST", "/metrics", "Bearer " + scraper, http.StatusForbidden, "Authorization denied for user system:serviceaccount:" + ns + ":scraper"},
	} {
		code, body := serve(h, c.method, c.path, c.authorization)
		if code != c.code || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, body, c.code, c.body)
		}
	}

	// Decisions are cached like the API server's delegating authorizer
	// caches them: revoking the binding takes effect within AllowTTL, and
	// at once for a new filter (a restarted manager).
	if err := cs.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, _ := serve(h, "GET", "/metrics", "Bearer "+scraper); code != http.StatusOK {
		t.Errorf("cached allow: %d, want 200 until %s after the first review", code, metricsauth.AllowTTL)
	}
	fresh := guarded(env.Config)
	deadline := time.Now().Add(10 * time.Second) // RBAC's authorizer cache follows the deletion
	for {
		code, _ := serve(fresh, "GET", "/metrics", "Bearer "+scraper)
		if code == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the binding was deleted a new filter still answers %d, want 403", code)
		}
		// A denial is cached DenyTTL, an allow AllowTTL: start over.
		fresh = guarded(env.Config)
		time.Sleep(100 * time.Millisecond)
	}

	// The API server away: 500 and a message, never the metrics.
	away := rest.CopyConfig(env.Config)
	away.Host = "https://127.0.0.1:1"
	if code, body := serve(guarded(away), "GET", "/metrics", "Bearer "+scraper); code != http.StatusInternalServerError || body != "Authentication failed" {
		t.Errorf("unreachable API server: %d %q, want 500 \"Authentication failed\"", code, body)
	}
}
