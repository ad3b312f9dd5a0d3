package controllers

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/client-go/tools/events"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestNetworkPolicyEventsFitTheAPIsNoteLimit: with 64 ports and
// namespaces of 63 characters, the note still fits (the API refuses one
// over 1,024 bytes, and the recorder drops it), naming fewer namespaces;
// each repair is an Event of its own.
func TestNetworkPolicyEventsFitTheAPIsNoteLimit(t *testing.T) {
	rec := events.NewFakeRecorder(100)
	changes := networkPolicyChanges{}
	for i := range 12 {
		changes.add(npCreated, fmt.Sprintf("%s-%02d", strings.Repeat("n", 60), i))
	}
	for i := range 3 {
		changes.add(npRepaired, fmt.Sprintf("tampered-%d", i))
	}
	var ports []string
	for p := range 64 {
		ports = append(ports, fmt.Sprintf("%d/TCP", 15000+p))
	}
	changes.announce(rec, &v1alpha1.ClusterLoopbackService{}, "loopguard-cluster-mesh", strings.Join(ports, ", "))
	close(rec.Events)
	var created, repaired []string
	for e := range rec.Events {
		switch {
		case strings.HasPrefix(e, "Normal "+npCreated+" "):
			created = append(created, strings.TrimPrefix(e, "Normal "+npCreated+" "))
		case strings.HasPrefix(e, "Warning "+npRepaired+" "):
			repaired = append(repaired, e)
		default:
			t.Errorf("unexpected event %q", e)
		}
	}
	if len(created) != 1 || len(created[0]) > maxNoteBytes || !strings.Contains(created[0], "in 12 namespaces (") || !strings.Contains(created[0], " more) to block") || !strings.Contains(created[0], "15063/TCP") {
		t.Fatalf("want one Created note of at most %d bytes naming some of the 12 namespaces and every port, got %d: %q", maxNoteBytes, len(created), created)
	}
	// A name so long that no namespace fits: still under the limit.
	long := networkPolicyChanges{npCreated: {"a", "b"}}
	long.announce(rec2(t, func(e string) {
		if len(e) > maxNoteBytes+len("Normal "+npCreated+" ") {
			t.Errorf("note of %d bytes", len(e))
		}
	}), &v1alpha1.ClusterLoopbackService{}, strings.Repeat("p", 253), strings.Join(ports, ", "))
	if len(repaired) != 3 || !strings.Contains(repaired[2], "tampered-2/") {
		t.Fatalf("want a repair Event per NetworkPolicy, got %q", repaired)
	}
}

// rec2 is a recorder that hands each event to check.
func rec2(t *testing.T, check func(string)) events.EventRecorder {
	t.Helper()
	rec := events.NewFakeRecorder(10)
	t.Cleanup(func() {
		close(rec.Events)
		n := 0
		for e := range rec.Events {
			n++
			check(e)
		}
		if n == 0 {
			t.Error("no event")
		}
	})
	return rec
}
