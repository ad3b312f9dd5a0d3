package crd

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFilesMatchBases checks the embedded manifests are exactly the files
// in bases/ (none missing, none stale).
func TestFilesMatchBases(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob(filepath.Join("bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(onDisk) || len(files) == 0 {
		t.Fatalf("embedded %d CRDs, bases/ has %d", len(files), len(onDisk))
	}
	for _, p := range onDisk {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := files[filepath.Base(p)]; !ok || string(got) != string(want) {
			t.Errorf("embedded %s differs from the file on disk", filepath.Base(p))
		}
	}
}
