package memlimit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"v2 limit", map[string]string{"memory.max": "268435456\n"}, 268435456},
		{"v2 unlimited", map[string]string{"memory.max": "max\n"}, 0},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "157286400\n"}, 157286400},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"v2 wins", map[string]string{"memory.max": "100", "memory/memory.limit_in_bytes": "200"}, 100},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for f, c := range tc.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Limit(root)
			if err != nil || got != tc.want {
				t.Fatalf("Limit = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestLimitGarbage(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("lots"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Limit(root); err == nil {
		t.Fatal("want an error for an unparsable limit")
	}
}

func TestSetRespectsGOMEMLIMIT(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1000000"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got, err := Set(root); err != nil || got != 0 {
		t.Fatalf("Set = %d, %v; want 0 (GOMEMLIMIT wins)", got, err)
	}
}
