package webhooks

import "testing"

// TestDecodeReviewReusesItsUnmarshalers: decoding a pod review allocates
// no more the second time than a warm decoder does. encoding/json/v2
// caches, per set of unmarshalers, which Go types each applies to; a set
// made for every review started that cache empty and paid about forty
// allocations (and their type checks) per review, half the decode's CPU
// at the API server's request rate.
func TestDecodeReviewReusesItsUnmarshalers(t *testing.T) {
	for _, body := range [][]byte{allowPodSeed, updateAddsSeed} {
		if _, err := decodeReview(body); err != nil {
			t.Fatal(err)
		}
		decode := func() {
			r, err := decodeReview(body)
			if err != nil || r.Request == nil || r.Request.Object.Object == nil {
				t.Fatalf("decodeReview: %v (request %v): want the slim object", err, r.Request)
			}
		}
		got := testing.AllocsPerRun(200, decode)
		// The review, its request, user info, the slim pod and its
		// containers: 36 and 58 for these seeds; unmarshalers made per
		// review added about 40 more (76 and 101).
		if got > 70 {
			t.Errorf("decodeReview allocates %.0f times per pod review, want at most 70 (the unmarshalers' type cache starts empty on every review?)", got)
		}
		t.Logf("%.0f allocations per review", got)
	}
}
