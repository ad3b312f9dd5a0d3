package main

import (
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
