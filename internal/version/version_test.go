package version

import "testing"

func TestStamped(t *testing.T) {
	old, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = old, oldC })
	Version, Commit = "v1.2.3", "abc"
	if Get() != "v1.2.3" || GetCommit() != "abc" {
		t.Errorf("Get() = %q, GetCommit() = %q", Get(), GetCommit())
	}
	Version, Commit = "", ""
	if Get() == "" || GetCommit() == "" {
		t.Errorf("unstamped: Get() = %q, GetCommit() = %q", Get(), GetCommit())
	}
}
