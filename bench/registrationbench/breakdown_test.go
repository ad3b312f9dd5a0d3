package main

import (
	"math"
	"testing"
)

// TestBreakdownMean reads a webhook's mean call over two scrapes: the
// series of its name only, summed over their other labels, after minus
// before.
func TestBreakdownMean(t *testing.T) {
	before := scrape(`# HELP x
apiserver_admission_webhook_admission_duration_seconds_bucket{name="pods.loopguard.io",operation="CREATE",rejected="false",type="validating",le="0.005"} 3
apiserver_admission_webhook_admission_duration_seconds_sum{name="pods.loopguard.io",operation="CREATE",rejected="false",type="validating"} 0.003
apiserver_admission_webhook_admission_duration_seconds_count{name="pods.loopguard.io",operation="CREATE",rejected="false",type="validating"} 3
`, apiHist)
	after := scrape(`apiserver_admission_webhook_admission_duration_seconds_sum{name="pods.loopguard.io",operation="CREATE",rejected="false",type="validating"} 0.013
apiserver_admission_webhook_admission_duration_seconds_count{name="pods.loopguard.io",operation="CREATE",rejected="false",type="validating"} 8
apiserver_admission_webhook_admission_duration_seconds_sum{name="pods.loopguard.io",operation="CREATE",rejected="true",type="validating"} 0.006
apiserver_admission_webhook_admission_duration_seconds_count{name="pods.loopguard.io",operation="CREATE",rejected="true",type="validating"} 2
apiserver_admission_webhook_admission_duration_seconds_sum{name="empty.registrationbench.loopguard.io",operation="CREATE",rejected="false",type="validating"} 9
apiserver_admission_webhook_admission_duration_seconds_count{name="empty.registrationbench.loopguard.io",operation="CREATE",rejected="false",type="validating"} 9
`, apiHist)
	ms, n := mean(before, after, apiHist, `name="pods.`)
	// (0.013 - 0.003 + 0.006) s over (8 - 3 + 2) calls.
	if want := 16.0 / 7; math.Abs(ms-want) > 1e-9 || n != 7 {
		t.Fatalf("mean = %v ms over %v calls, want %v over 7", ms, n, want)
	}
	if ms, n := mean(before, after, apiHist, `name="absent"`); ms != 0 || n != 0 {
		t.Fatalf("mean of no series = %v over %v, want 0 over 0", ms, n)
	}
}
