//go:build e2e

package redteam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

// TestHole9FakeOwner: the audit reports a workload's template instead of
// each of its pods, so a pod "owned" by a workload was skipped. Anyone
// with edit can write any ownerReferences on a pod. An owner is trusted
// only when it exists with that UID and its kind really owns pods; a pod
// with a fake owner is judged, and the violation shows in the policy's
// status.
//
// The garbage collector deletes a dependent whose owner it can look up and
// does not find, so the fake owners here are the ones it keeps: a real
// object of a kind that owns no pods, and owners of an API version it
// cannot resolve. (A reference with a real ReplicaSet's UID to a pod its
// selector does not match is released by the ReplicaSet controller, which
// removes the reference: seen here, not an attack.)
func TestHole9FakeOwner(t *testing.T) {
	tn := newTenant(t)
	// Audit: the violating pods are admitted and must show in status.
	tn.Must(t, protectCart(tn.NS, "Audit"), "apply", "-f", "-")
	waitEnforced(t, tn.NS, "loopbackservice", "envoy-admin")

	tn.Must(t, `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: registry.k8s.io/pause:3.10
`, "apply", "-f", "-")
	tn.Must(t, `apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: idle
spec:
  replicas: 0
  selector:
    matchLabels: {app: idle}
  template:
    metadata:
      labels: {app: idle}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
`, "apply", "-f", "-")
	uid := func(kind, name string) string {
		return strings.TrimSpace(tn.Must(t, "", "get", kind, name, "-o", "jsonpath={.metadata.uid}").Stdout)
	}
	cronUID := uid("cronjob", "nightly")

	for _, tc := range []struct{ name, apiVersion, kind, owner, uid string }{
		{"by-cronjob", "batch/v1", "CronJob", "nightly", cronUID},                                 // exists, but a CronJob owns Jobs, not pods
		{"by-ghost", "apps/v9", "ReplicaSet", "ghost", "0b5e4c1e-0000-4000-8000-000000000001"},    // does not exist
		{"by-other-uid", "apps/v9", "ReplicaSet", "idle", "0b5e4c1e-0000-4000-8000-000000000002"}, // exists with another UID
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := "sneaky-" + tc.name
			tn.Must(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: cart}
  ownerReferences:
  - apiVersion: %s
    kind: %s
    name: %s
    uid: %s
    controller: true
spec:
  containers:
  - name: envoy
    image: registry.k8s.io/pause:3.10
    ports:
    - containerPort: 15000
`, pod, tc.apiVersion, tc.kind, tc.owner, tc.uid), "apply", "-f", "-")
			devcluster.Eventually(t, time.Minute, func() string {
				r := tryAdmin(t, "", "-n", tn.NS, "get", "loopbackservice", "envoy-admin", "-o",
					`jsonpath={range .status.violations[*]}{.kind} {.name} {.port}{"\n"}{end}`)
				if !strings.Contains(r.Stdout, "Pod "+pod+" 15000") {
					return "status.violations lack pod " + pod + ": " + r.String()
				}
				return ""
			})
		})
	}
}
