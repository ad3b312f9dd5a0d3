//go:build e2e

package redteam

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// forgedReview is an AdmissionReview the API server never sent: a CONNECT
// of pods/portforward to pod %[2]s/%[3]s by the user %[4]q.
const forgedReview = `{
  "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
  "request": {
    "uid": "%[1]s",
    "kind": {"group": "", "version": "v1", "kind": "PodPortForwardOptions"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "subResource": "portforward",
    "requestKind": {"group": "", "version": "v1", "kind": "PodPortForwardOptions"},
    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
    "requestSubResource": "portforward",
    "name": "%[3]s", "namespace": "%[2]s", "operation": "CONNECT",
    "userInfo": {"username": "%[4]s", "groups": ["system:authenticated"]},
    "object": {"apiVersion": "v1", "kind": "PodPortForwardOptions", "ports": [15000]},
    "dryRun": false
  }
}`

const hole12Policy = `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: cart-admin}
spec:
  podSelector: {matchLabels: {app: cart}}
  ports: [{port: 15000}]
  portForward: {action: Deny}
`

// portForwardWebhookURL is the URL the API server calls for
// portforward.loopguard.io, as registered in the cluster (hack/dev.sh
// registers the host's address, whatever DEV_PORT_OFFSET).
func portForwardWebhookURL(t *testing.T) string {
	t.Helper()
	r := admin(t, "", "get", "validatingwebhookconfigurations", "-o",
		`jsonpath={range .items[*].webhooks[?(@.name=="portforward.loopguard.io")]}{.clientConfig.url}{"\n"}{end}`)
	url := strings.TrimSpace(strings.Split(strings.TrimSpace(r.Stdout), "\n")[0])
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("no URL registered for portforward.loopguard.io (the dev webhook runs on the host): %q", r.Stdout)
	}
	return url
}

// portForwardEvents lists the PortForward Events of namespace ns.
func portForwardEvents(t *testing.T, ns string) string {
	t.Helper()
	return tryAdmin(t, "", "get", "events", "-n", ns, "--field-selector", "reason=PortForward",
		"-o", `jsonpath={range .items[*]}{.note}{.message}{"\n"}{end}`).Stdout
}

// TestHole12ForgedReviewRefused: anything that reaches the webhook's port
// (a pod, here the test process) posts an AdmissionReview of its own
// making, a port-forward "by" another user. Without authentication the
// webhook believes it: an Event, a log line and a metric blame that user.
// With --webhook-client-ca (as hack/dev.sh runs the manager) the TLS
// handshake needs a client certificate that only the API server has, so
// the forgery records nothing; the API server's own calls still arrive.
func TestHole12ForgedReviewRefused(t *testing.T) {
	tn := newTenant(t)
	admin(t, hole12Policy, "-n", tn.NS, "apply", "-f", "-")
	waitEnforced(t, tn.NS, "lbs", "cart-admin")
	// No node needed: the guard looks the pod up in the cache.
	admin(t, "", "-n", tn.NS, "run", "cart-0", "--image=loopguard-listener:dev", "--image-pull-policy=Never",
		"--restart=Never", "--labels=app=cart")

	victim := "victim-" + tn.NS
	url := portForwardWebhookURL(t)
	body := fmt.Sprintf(forgedReview, "00000000-0000-0000-0000-000000000012", tn.NS, "cart-0", victim)
	if !json.Valid([]byte(body)) {
		t.Fatalf("the forged review is not JSON: %s", body)
	}
	// The attacker does not care who the server is; it has no client
	// certificate to offer.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the attacker's side
	}}
	resp, err := client.Post(url, "application/json", bytes.NewBufferString(body))
	if err == nil {
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		t.Errorf("a forged AdmissionReview without a client certificate was answered by %s: HTTP %d %s", url, resp.StatusCode, out)
	} else {
		t.Logf("forged review to %s refused: %v", url, err)
	}

	// The API server, which authenticates with its client certificate,
	// still reaches both webhooks: a pod exposing 15000 is refused ...
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: cart-1, labels: {app: cart}}
spec:
  containers:
  - {name: envoy, image: loopguard-listener:dev, ports: [{containerPort: 15000}]}
`
	r := tn.Refused(t, "denied the request", pod, "apply", "-f", "-")
	t.Logf("tenant's pod: %s", strings.TrimSpace(r.Stderr))
	// ... and so is the tenant's own port-forward, recorded under its name.
	r = tn.Refused(t, `admission webhook "portforward.loopguard.io" denied the request`, "",
		"create", "--raw", "/api/v1/namespaces/"+tn.NS+"/pods/cart-0/portforward?ports=15000", "-f", "/dev/null")
	t.Logf("tenant's port-forward: %s", strings.TrimSpace(r.Stderr))
	var events string
	devcluster.Eventually(t, time.Minute, func() string {
		events = portForwardEvents(t, tn.NS)
		if !strings.Contains(events, fmt.Sprintf("port-forward by %q", tn.User)) {
			return "no PortForward Event naming the tenant yet: " + events
		}
		return ""
	})
	// Had the forged review been believed, the first PortForward Event on
	// the policy would name the victim (and client-go's event library,
	// which keys a series on the object, reason and action but not the
	// note, would fold the tenant's into that series: on the old code the
	// tenant's Event never appears).
	if strings.Contains(events, fmt.Sprintf("%q", victim)) {
		t.Errorf("the forged review put an Event under %q on the policy:\n%s", victim, events)
	}
	t.Logf("PortForward Events:\n%s", strings.TrimSpace(events))
}
