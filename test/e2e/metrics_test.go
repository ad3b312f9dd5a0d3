//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsNeedAuthorization checks the manager's metrics endpoint
// (https://127.0.0.1:8443/metrics in dev) answers a token bound to the
// metrics-reader ClusterRole, and refuses anonymous and unbound callers.
func TestMetricsNeedAuthorization(t *testing.T) {
	ns := testNamespace(t)
	get := metricsGetter(t, ns)
	stranger := strings.TrimSpace(func() string {
		mustKubectl(t, "", "create", "serviceaccount", "stranger", "-n", ns)
		return mustKubectl(t, "", "create", "token", "stranger", "-n", ns).Stdout
	}())
	eventually(t, 30*time.Second, func() string {
		code, body := get(readerToken)
		if code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
			return fmt.Sprintf("bound token: %d %.200s", code, body)
		}
		return ""
	})
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("anonymous: got %d, want 401", code)
	}
	if code, _ := get(stranger); code != http.StatusForbidden {
		t.Errorf("unbound token: got %d, want 403", code)
	}
}

// readerToken, passed to a metricsGetter's function, stands for the token
// of a ServiceAccount bound to the metrics-reader ClusterRole.
const readerToken = "\x00reader"

// metricsGetter returns a GET of the manager's metrics endpoint
// (https://127.0.0.1:8443/metrics in dev) with a bearer token;
// readerToken is replaced by the token of a ServiceAccount in ns that
// config/rbac's metrics-reader ClusterRole binds.
func metricsGetter(t *testing.T, ns string) func(token string) (int, string) {
	t.Helper()
	mustKubectl(t, "", "apply", "-f", "config/rbac/metrics_auth_role.yaml")
	mustKubectl(t, "", "create", "serviceaccount", "prometheus", "-n", ns)
	mustKubectl(t, "", "create", "clusterrolebinding", ns+"-metrics", "--clusterrole=metrics-reader", "--serviceaccount="+ns+":prometheus")
	t.Cleanup(func() { kubectl(t, "", "delete", "clusterrolebinding", ns+"-metrics") })
	reader := strings.TrimSpace(mustKubectl(t, "", "create", "token", "prometheus", "-n", ns).Stdout)
	// The dev serving certificate is self-signed by the manager; what is
	// under test here is authentication and authorization, not the chain.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}}
	return func(token string) (int, string) {
		if token == readerToken {
			token = reader
		}
		req, _ := http.NewRequest(http.MethodGet, devMetricsURL(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
}
