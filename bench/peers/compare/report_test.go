package main

import "testing"

func TestDescribeCommit(t *testing.T) {
	for _, tc := range []struct {
		name, porcelain, want string
	}{
		{"clean", "", "commit abc1234"},
		{"only the report itself", " M docs/comparison.md\n", "commit abc1234"},
		{"a changed file", " M docs/comparison.md\n M bench/peers/compare/vap.go\n?? x.txt\n",
			"commit abc1234, **dirty** (uncommitted changes: bench/peers/compare/vap.go, x.txt)"},
		{"a rename", "R  a.go -> b.go\n", "commit abc1234, **dirty** (uncommitted changes: b.go)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeCommit("abc1234", tc.porcelain, "/r/docs/comparison.md", "/r"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
