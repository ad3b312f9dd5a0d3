package controllers

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/loopguard/loopguard/internal/hostnet"
)

// countingMapper answers that no kind is served, and counts the questions.
type countingMapper struct {
	meta.RESTMapper
	asked int
}

func (m *countingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.asked++
	return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
}

// TestNodeReportsAskDiscoveryOncePerPoll: without OpenReports, the node
// reports' reconciles never ask the RESTMapper, whose every miss is a
// discovery request and a rebuilt mapping (once per node's reconcile
// before: at 5,000 nodes, 11% of the manager's allocations). The look is
// the poller's, once per reportsAPIPoll.
func TestNodeReportsAskDiscoveryOncePerPoll(t *testing.T) {
	m := &countingMapper{}
	r := &HostNetworkReconciler{api: newReportsAPI(m, clusterReportGK)}
	r.api.check(context.Background())
	for range 100 {
		if err := r.writeReport(context.Background(), "node-a", []hostnet.PodReport{{Namespace: "ns", Name: "agent"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if m.asked != 1 {
		t.Fatalf("the RESTMapper was asked %d times for 100 node reconciles, want once (the poller's look)", m.asked)
	}
}
