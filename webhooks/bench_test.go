package webhooks

// Benchmarks of one admission review, in process (docs/benchmarks.md):
//
//	go test -run '^$' -bench 'BenchmarkAdmission' -benchmem ./webhooks/
//
// BenchmarkAdmission/<case>/<placement>/policies=<N> is a full review: an
// admission.Request built around the pre-marshalled object, then
// ExposureValidator.Handle (index lookup, decode, cache reads, evaluation,
// decision, audit log, metrics, response). BenchmarkAdmissionHTTP adds what
// controller-runtime's webhook.Admission does around it: decoding the
// AdmissionReview body and encoding the response (no TLS, no socket; see
// bench/loadgen for those).
//
// The workload (policies, existing pods and Services, reviewed objects) is
// test/workload's, shared with the load generator. The cache is its
// in-memory client.Reader; the audit log is a production (JSON) zap logger
// writing to io.Discard, so the encoding of every denial's log line is
// measured but no I/O. The package's TestMain (package webhooks_test) still
// starts a control plane first; these benchmarks do not use it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/test/workload"
)

// benchCPU returns the CPU time (user and system) of the process so far.
// cpu-ns/op, its growth over a benchmark's loop divided by b.N, is what a
// review costs in CPU whatever else the machine runs (ns/op is wall time,
// and grows when other processes take the cores); it also counts the
// garbage collector's background work, and whatever the process runs
// besides (here, idle controllers of TestMain's manager).
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchIndexes sync.Map // benchIndexKey -> *policyindex.Index

type benchIndexKey struct {
	n int
	p workload.Placement
}

// benchValidator returns the validator of the workload with n policies
// placed as p; indexes are built once per (n, p) and shared, read-only.
func benchValidator(b *testing.B, n int, p workload.Placement) *ExposureValidator {
	b.Helper()
	key := benchIndexKey{n, p}
	idx, ok := benchIndexes.Load(key)
	if !ok {
		x, err := workload.NewIndex(n, p)
		if err != nil {
			b.Fatal(err)
		}
		idx, _ = benchIndexes.LoadOrStore(key, x)
	}
	return &ExposureValidator{
		Index:  idx.(*policyindex.Index),
		Reader: workload.NewReader(),
		Log:    crzap.New(crzap.WriteTo(io.Discard), crzap.UseDevMode(false)),
	}
}

func benchMessage(resp admission.Response) string {
	if resp.Result == nil {
		return ""
	}
	return resp.Result.Message
}

// benchEach runs fn for every case, placement and policy count, as
// <case>/<placement>/policies=<N>.
func benchEach(b *testing.B, counts []int, fn func(b *testing.B, c workload.Case, v *ExposureValidator)) {
	for _, c := range workload.Cases() {
		b.Run(c.Name, func(b *testing.B) {
			for _, p := range workload.Placements {
				b.Run(string(p), func(b *testing.B) {
					for _, n := range counts {
						b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
							fn(b, c, benchValidator(b, n, p))
						})
					}
				})
			}
		})
	}
}

func BenchmarkAdmission(b *testing.B) {
	benchEach(b, workload.PolicyCounts, func(b *testing.B, c workload.Case, v *ExposureValidator) {
		ctx := context.Background()
		// The decision, once, untimed: the full path runs (the object is
		// protected, the cache is read, the policy denies it).
		resp := v.Handle(ctx, c.Request("bench-check"))
		if err := c.Check(resp.Allowed, benchMessage(resp)); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(c.Raw)))
		b.ReportAllocs()
		cpu0 := benchCPU()
		for b.Loop() {
			if resp := v.Handle(ctx, c.Request("0f6d3c2a-5b4e-4d7a-9c8b-7a6f5e4d3c2b")); resp.Allowed != c.Allowed {
				b.Fatalf("allowed=%v, want %v", resp.Allowed, c.Allowed)
			}
		}
		b.ReportMetric(float64(benchCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// benchResponseWriter is the least an http.ResponseWriter can be, so that
// BenchmarkAdmissionHTTP measures the webhook and not a recorder.
type benchResponseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *benchResponseWriter) Header() http.Header         { return w.header }
func (w *benchResponseWriter) WriteHeader(status int)      { w.status = status }
func (w *benchResponseWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *benchResponseWriter) reset() {
	clear(w.header)
	w.status = http.StatusOK
	w.body.Reset()
}

// BenchmarkAdmissionHTTP is the production HTTP handler (ReviewHandler).
func BenchmarkAdmissionHTTP(b *testing.B) {
	benchEach(b, []int{10, 10000}, func(b *testing.B, c workload.Case, v *ExposureValidator) {
		benchHTTP(b, c, &ReviewHandler{Handler: v, Log: logr.Discard()})
	})
}

// BenchmarkAdmissionHTTPControllerRuntime is the same review through
// controller-runtime's webhook.Admission, which served it before
// ReviewHandler: the ratio of the two is what the single decode saves.
func BenchmarkAdmissionHTTPControllerRuntime(b *testing.B) {
	benchEach(b, []int{10}, func(b *testing.B, c workload.Case, v *ExposureValidator) {
		benchHTTP(b, c, &webhook.Admission{
			Handler:        v,
			LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return logr.Discard() },
		})
	})
}

func benchHTTP(b *testing.B, c workload.Case, wh http.Handler) {
	serve, size := benchServe(b, c, wh)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu0 := benchCPU()
	for b.Loop() {
		serve()
	}
	b.ReportMetric(float64(benchCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// benchServe returns a function that serves c's review to wh, once checked
// to give c's decision, and the review's size.
func benchServe(b *testing.B, c workload.Case, wh http.Handler) (func(), int) {
	body := c.Review("0f6d3c2a-5b4e-4d7a-9c8b-7a6f5e4d3c2b")
	rdr := bytes.NewReader(body)
	req, err := http.NewRequest(http.MethodPost, Path, io.NopCloser(rdr))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body)) // as the API server sends it
	w := &benchResponseWriter{header: http.Header{}}
	serve := func() {
		rdr.Reset(body)
		w.reset()
		wh.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("HTTP %d: %s", w.status, w.body.Bytes())
		}
	}
	serve()
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.body.Bytes(), &ar); err != nil || ar.Response == nil {
		b.Fatalf("response %q: %v", w.body.Bytes(), err)
	}
	msg := ""
	if ar.Response.Result != nil {
		msg = ar.Response.Result.Message
	}
	if err := c.Check(ar.Response.Allowed, msg); err != nil {
		b.Fatal(err)
	}
	return serve, len(body)
}
