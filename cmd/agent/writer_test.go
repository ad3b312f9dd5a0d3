package main

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}, &env) }

// TestReportWriter applies reports to a real API server: the first write
// creates the report, owned by its Node; a scan with the same findings
// writes nothing until the refresh period has passed; changed findings are
// written at once; a deleted report comes back at the next write.
func TestReportWriter(t *testing.T) {
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "writer-node"}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	w := &reportWriter{c: env.Client, reader: env.Client, node: node, refresh: time.Hour}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	status := func(at time.Time, beyond int32) v1alpha1.NodeBindReportStatus {
		return v1alpha1.NodeBindReportStatus{
			ScannedAt: &metav1.Time{Time: at}, ScanInterval: &metav1.Duration{Duration: time.Minute},
			PodsChecked: 1, PodsBeyondLoopback: beyond,
		}
	}
	get := func() *v1alpha1.NodeBindReport {
		t.Helper()
		var nbr v1alpha1.NodeBindReport
		if err := env.Client.Get(ctx, client.ObjectKey{Name: node.Name}, &nbr); err != nil {
			t.Fatal(err)
		}
		return &nbr
	}
	steps := []struct {
		name      string
		at        time.Time
		beyond    int32
		deleteNow bool
		wantWrite bool
	}{
		{"first write creates the report", now, 0, false, true},
		{"same findings, a minute later", now.Add(time.Minute), 0, false, false},
		{"changed findings", now.Add(2 * time.Minute), 1, false, true},
		{"same findings again", now.Add(3 * time.Minute), 1, false, false},
		{"deleted, before the refresh: not yet", now.Add(4 * time.Minute), 1, true, false},
		{"refresh period passed: rewritten, recreated", now.Add(2 * time.Hour), 1, false, true},
	}
	for _, s := range steps {
		if s.deleteNow {
			if err := env.Client.Delete(ctx, get()); err != nil {
				t.Fatal(err)
			}
		}
		wrote, err := w.write(ctx, status(s.at, s.beyond), s.at)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if wrote != s.wantWrite {
			t.Fatalf("%s: wrote = %v, want %v", s.name, wrote, s.wantWrite)
		}
		if s.deleteNow {
			var nbr v1alpha1.NodeBindReport
			if err := env.Client.Get(ctx, client.ObjectKey{Name: node.Name}, &nbr); !apierrors.IsNotFound(err) {
				t.Fatalf("%s: report still there: %v", s.name, err)
			}
			continue
		}
		nbr := get()
		if nbr.Status.PodsBeyondLoopback != s.beyond {
			t.Errorf("%s: podsBeyondLoopback = %d, want %d", s.name, nbr.Status.PodsBeyondLoopback, s.beyond)
		}
		if refs := nbr.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].UID != node.UID {
			t.Errorf("%s: ownerReferences = %+v, want the Node", s.name, refs)
		}
		owned := false
		for _, mf := range nbr.ManagedFields {
			owned = owned || (mf.Manager == fieldOwner && mf.Subresource == "status")
		}
		if !owned {
			t.Errorf("%s: status not applied by field manager %q", s.name, fieldOwner)
		}
	}
}
