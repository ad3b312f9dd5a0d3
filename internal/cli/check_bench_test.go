package cli

// Benchmarks of `loopguard check` on generated repositories (docs/benchmarks.md):
//
//	go test -run '^$' -bench BenchmarkCheck -benchtime 1x -count 5 ./internal/cli/
//
// objects=N: one namespace with N/2 Deployments and N/2 Services, each
// Service selecting its own Deployment (app=app-<i>) on a port that is not
// protected, every Deployment also declaring the protected 15000: the
// sparse case of a real repository, where each Service selects a few
// workloads. dense=1000x1000: 1,000 Services that all select the same
// 1,000 Deployments (tier=web), the worst case of selection.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// cpuTime is the CPU time (user and system) of the process so far:
// cpu-ns/op is what a run costs whatever else the machine runs (ns/op is
// wall time, and the GC's background work counts in both).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchPolicy = `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata:
  name: admin
  namespace: bench
spec:
  podSelector: {}
  ports:
  - port: 15000
`

// writeBenchRepo writes services Services and workloads Deployments in one
// file; dense: every Service selects every Deployment.
func writeBenchRepo(tb testing.TB, dir string, services, workloads int, dense bool) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString(benchPolicy)
	for i := range workloads {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%[1]d
  namespace: bench
spec:
  selector:
    matchLabels: {app: app-%[1]d}
  template:
    metadata:
      labels: {app: app-%[1]d, tier: web}
    spec:
      containers:
      - name: app
        image: example.com/app:1
        ports:
        - {name: http, containerPort: 8080}
        - {name: admin, containerPort: 15000}
`, i)
	}
	for i := range services {
		sel := fmt.Sprintf("app: app-%d", i%max(workloads, 1))
		if dense {
			sel = "tier: web"
		}
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata:
  name: svc-%d
  namespace: bench
spec:
  selector: {%s}
  ports:
  - {name: http, port: 80, targetPort: http}
`, i, sel)
	}
	path := filepath.Join(dir, "repo.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func BenchmarkCheck(b *testing.B) {
	cases := []struct {
		name                string
		services, workloads int
		dense               bool
	}{
		{"objects=6000", 3000, 3000, false},
		{"objects=12000", 6000, 6000, false},
		{"objects=100000", 50000, 50000, false},
		{"dense=1000x1000", 1000, 1000, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			path := writeBenchRepo(b, b.TempDir(), c.services, c.workloads, c.dense)
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }()
			for range b.N {
				o := &checkOptions{files: []string{path}, namespace: "default", output: outputText}
				// Every Deployment declares the protected port: exit 1.
				var ee *exitError
				if err := runCheck(o, streams); !errors.As(err, &ee) || ee.code != ExitViolations {
					b.Fatalf("want exit status %d, got %v", ExitViolations, err)
				}
			}
		})
	}
}
