package main

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"slices"
	"testing"
)

// TestChangedSaysWhatChanged: the quiet window names the changed objects
// and counts the fields that changed in them (a condition by its type).
func TestChangedSaysWhatChanged(t *testing.T) {
	before := map[string]written{
		"LoopbackService:a/x": {rv: "1", fields: statusFields(map[string]any{"matchedPods": 3, "conditions": []any{
			map[string]any{"type": "Ready", "status": "True"}, map[string]any{"type": "RuntimeVerified", "status": "True"}}})},
		"LoopbackService:a/y": {rv: "5", fields: statusFields(map[string]any{"matchedPods": 1})},
		"np:a/z":              {rv: "7", fields: map[string]string{"spec": "s"}},
	}
	after := map[string]written{
		"LoopbackService:a/x": {rv: "2", fields: statusFields(map[string]any{"matchedPods": 3, "conditions": []any{
			map[string]any{"type": "Ready", "status": "True"}, map[string]any{"type": "RuntimeVerified", "status": "False"}}})},
		"LoopbackService:a/y": {rv: "5", fields: statusFields(map[string]any{"matchedPods": 1})},
	}
	objs, fields := changed(before, after)
	if want := []string{"LoopbackService:a/x", "np:a/z (gone)"}; !slices.Equal(objs, want) {
		t.Errorf("changed objects %q, want %q", objs, want)
	}
	if len(fields) != 1 || fields["status.conditions[RuntimeVerified]"] != 1 {
		t.Errorf("changed fields %v, want status.conditions[RuntimeVerified] once", fields)
	}
}

// TestParseWrites: the write requests the manager makes, by verb,
// resource, subresource and code, from the API server's metrics.
func TestParseWrites(t *testing.T) {
	m := `# HELP apiserver_request_total x
apiserver_request_total{code="200",component="apiserver",dry_run="",group="loopguard.io",resource="loopbackservices",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 40
apiserver_request_total{code="409",component="apiserver",dry_run="",group="loopguard.io",resource="loopbackservices",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="networking.k8s.io",resource="networkpolicies",scope="resource",subresource="",verb="POST",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 99
apiserver_request_total{code="200",component="apiserver",dry_run="",group="networking.k8s.io",resource="networkpolicies",scope="namespace",subresource="",verb="LIST",version="v1"} 5
`
	if pods := parseWrites(m, []string{"pods"}); len(pods) != 1 || pods["PATCH pods/status 200"] != 99 {
		t.Errorf("parseWrites(pods) = %v, want kwok's 99 pod status patches", pods)
	}
	got := parseWrites(m, writeResources)
	want := map[string]float64{"PATCH loopbackservices/status 200": 40, "PATCH loopbackservices/status 409": 2, "POST networkpolicies 201": 7}
	if len(got) != len(want) {
		t.Fatalf("parseWrites = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if s := writesSince(map[string]float64{"PATCH loopbackservices/status 200": 10}, got); s != "PATCH loopbackservices/status 200: 30, POST networkpolicies 201: 7, PATCH loopbackservices/status 409: 2" {
		t.Errorf("writesSince = %q", s)
	}
	all := parseRequests(m+`apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
`, func(verb, _ string) bool { return verb != "WATCH" })
	if len(all) != 5 || all["LIST networkpolicies 200"] != 5 || all["WATCH pods 200"] != 0 {
		t.Errorf("parseRequests(every verb but WATCH) = %v, want the 5 samples with the LIST", all)
	}
}

func TestParseReconciles(t *testing.T) {
	m := `# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="loopbackservice",result="success"} 12
controller_runtime_reconcile_total{controller="loopbackservice",result="requeue_after"} 3
controller_runtime_reconcile_total{controller="hostnetwork",result="success"} 7
controller_runtime_reconcile_errors_total{controller="hostnetwork"} 9
`
	got := parseReconciles(m)
	if len(got) != 3 || got["loopbackservice success"] != 12 || got["loopbackservice requeue_after"] != 3 || got["hostnetwork success"] != 7 {
		t.Errorf("parseReconciles = %v", got)
	}
}

// TestEnforcedForItsGeneration: a status is current only when the
// registration covers the policy's generation.
func TestEnforcedForItsGeneration(t *testing.T) {
	p := func(status string, og int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": []any{
			map[string]any{"type": "Ready", "status": "True", "observedGeneration": int64(2)},
			map[string]any{"type": "Enforced", "status": status, "observedGeneration": og}}}}}
		u.SetGeneration(2)
		return u
	}
	if !enforced(p("True", 2)) || enforced(p("True", 1)) || enforced(p("False", 2)) || enforced(&unstructured.Unstructured{Object: map[string]any{}}) {
		t.Error("enforced: want true only for Enforced True at the policy's generation")
	}
}

// TestConvergenceRecordsTheEventThatCompletedIt: the NetworkPolicies'
// time is that of the last one's arrival; the statuses' only once every
// NetworkPolicy exists, and a status that stops being current counts out.
func TestConvergenceRecordsTheEventThatCompletedIt(t *testing.T) {
	c := &convergence{expect: map[string]int{"a/p": 1, "/c": 2}, wantNPs: 2,
		current: map[string]bool{}, nps: map[string]bool{}, changed: make(chan struct{}, 1)}
	c.set(c.current, "a/p", true)
	c.set(c.current, "/c", true)
	if !c.doneAt.IsZero() {
		t.Fatal("statuses converged before every NetworkPolicy existed")
	}
	c.set(c.current, "/c", false)
	c.set(c.nps, "a/x", true)
	c.set(c.nps, "a/y", true)
	if c.npsAt.IsZero() || !c.doneAt.IsZero() {
		t.Fatalf("npsAt %v doneAt %v: want the NetworkPolicies' time only", c.npsAt, c.doneAt)
	}
	c.set(c.current, "/c", true)
	if c.doneAt.IsZero() || c.doneAt.Before(c.npsAt) {
		t.Fatalf("doneAt %v, npsAt %v: want the last status's time", c.doneAt, c.npsAt)
	}
}
