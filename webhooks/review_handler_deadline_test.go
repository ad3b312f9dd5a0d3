package webhooks

import (
	"net/http/httptest"
	"testing"
	"time"
)

// TestRequestDeadline: a review ends a fifth before the timeout the API
// server sends as ?timeout=, and without one only with the request.
func TestRequestDeadline(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want time.Duration // 0: no deadline
	}{
		{"/validate-exposure?timeout=5s", 4 * time.Second},
		{"/validate-exposure?timeout=30s", 24 * time.Second},
		{"/validate-exposure", 0},
		{"/validate-exposure?timeout=soon", 0},
		{"/validate-exposure?timeout=-1s", 0},
	} {
		ctx, cancel := requestDeadline(httptest.NewRequest("POST", tc.url, nil))
		deadline, ok := ctx.Deadline()
		cancel()
		if tc.want == 0 {
			if ok {
				t.Errorf("%s: deadline %v, want none", tc.url, deadline)
			}
			continue
		}
		if left := time.Until(deadline); !ok || left > tc.want || left < tc.want-time.Second {
			t.Errorf("%s: deadline in %v (set %v), want about %v", tc.url, left, ok, tc.want)
		}
	}
}
