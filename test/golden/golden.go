// Package golden compares a test's output with a golden file, or rewrites
// the file when the test binary runs with -update.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files with the current output")

// Check compares got with the file at path (relative to the test's package
// directory); with -update it writes got there instead. pkg is the package's
// path as go test takes it (./internal/cli/), named in the hint to update.
func Check(t testing.TB, path, got, pkg string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file %s (run go test %s -update): %v", path, pkg, err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (run go test %s -update to accept):\n--- want\n%s\n--- got\n%s", path, pkg, want, got)
	}
}
