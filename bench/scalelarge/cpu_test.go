package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// A command with spaces and a parenthesis; utime 1234, stime 566.
	line := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 566 0 0 20 0 12 0 100 0 0"
	if got := parseStatCPU(line); got != 18 {
		t.Errorf("parseStatCPU = %v, want 18 (1800 ticks)", got)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 u s"} {
		if got := parseStatCPU(bad); got != -1 {
			t.Errorf("parseStatCPU(%q) = %v, want -1", bad, got)
		}
	}
	if got := cpuSeconds(os.Getpid()); got < 0 {
		t.Errorf("cpuSeconds(self) = %v", got)
	}
}
