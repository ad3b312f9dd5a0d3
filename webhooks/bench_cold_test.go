package webhooks

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/loopguard/loopguard/test/workload"
)

// BenchmarkAdmissionHTTPCold serves the admitted pod's review (the one the
// registration benchmark sends) with the CPU caches evicted before each
// review, by a walk over evict bytes, next to the floor every webhook pays:
// decoding the review and admitting it, as bench/emptywebhook does. At the
// registration benchmark's rate (a review every few milliseconds) a review
// finds loopguard's code and data out of the caches, which the hot loop of
// BenchmarkAdmissionHTTP never shows. review-ns/op is the wall time of the
// reviews alone (ns/op includes the walks); compare loopguard with
// admit-all at each evict size.
//
//	go test -run '^$' -bench AdmissionHTTPCold -benchtime 400x ./webhooks/
func BenchmarkAdmissionHTTPCold(b *testing.B) {
	c := workload.AllCases()[workload.AllowPod]
	v := benchValidator(b, 1, workload.Spread)
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"loopguard", &ReviewHandler{Handler: v, Log: logr.Discard()}},
		{"admit-all", http.HandlerFunc(workload.AdmitAll)},
	}
	for _, evict := range []int{0, 8 << 20, 256 << 20} {
		buf := make([]byte, evict)
		for i := range buf {
			buf[i] = byte(i)
		}
		for _, h := range handlers {
			b.Run(fmt.Sprintf("evict=%dMiB/%s", evict>>20, h.name), func(b *testing.B) {
				serve, _ := benchServe(b, c, h.h)
				var spent time.Duration
				for b.Loop() {
					evictCaches(buf)
					t0 := time.Now()
					serve()
					spent += time.Since(t0)
				}
				b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "review-ns/op")
			})
		}
	}
}

// coldSink keeps the walk from being optimized away.
var coldSink byte

// evictCaches reads one byte of every cache line of buf.
func evictCaches(buf []byte) {
	var x byte
	for i := 0; i < len(buf); i += 64 {
		x ^= buf[i]
	}
	coldSink ^= x
}
