package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// uidTemplate is the uid of every review body; each request overwrites
// its last 12 hex digits with a sequence number unique to the run.
const uidTemplate = "00000000-0000-4000-8000-000000000000"

// server is the self-contained webhook, a child process.
type server struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *cappedBuffer
	info   serverInfo
}

type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startServer(o options) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &server{stderr: &cappedBuffer{}}
	s.cmd = exec.Command(exe, "--serve", "--stdin-control", "--policies", fmt.Sprint(o.policies),
		"--placement", string(o.placement), "--port", fmt.Sprint(o.port), "--audit-log", o.auditLog, "--server-cpuprofile", o.cpuProfile)
	s.cmd.Stderr = s.stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.stdout = bufio.NewReader(out)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := s.stdout.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &s.info)
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("the webhook server did not start: %v\n%s", err, s.stderr)
	}
	return s, nil
}

// cpu returns the server process's CPU time so far.
func (s *server) cpu() (time.Duration, error) {
	if _, err := io.WriteString(s.stdin, "cpu\n"); err != nil {
		return 0, err
	}
	line, err := s.stdout.ReadBytes('\n')
	if err != nil {
		return 0, err
	}
	var r cpuReport
	if err := json.Unmarshal(line, &r); err != nil {
		return 0, err
	}
	return time.Duration(r.CPUNanos), nil
}

func (s *server) stop() {
	_ = s.stdin.Close() // EOF: the server shuts down
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// errorCounts counts failed requests by cause.
type errorCounts struct {
	Transport   int64 `json:"transport"`   // connection, TLS or timeout
	HTTPStatus  int64 `json:"httpStatus"`  // not 200
	BadResponse int64 `json:"badResponse"` // not an AdmissionReview with a response
	WrongUID    int64 `json:"wrongUID"`    // the uid not echoed
	Decision    int64 `json:"decision"`    // not the decision the workload expects
}

func (e errorCounts) total() int64 {
	return e.Transport + e.HTTPStatus + e.BadResponse + e.WrongUID + e.Decision
}

func (e *errorCounts) add(o errorCounts) {
	e.Transport += o.Transport
	e.HTTPStatus += o.HTTPStatus
	e.BadResponse += o.BadResponse
	e.WrongUID += o.WrongUID
	e.Decision += o.Decision
}

// result is what a run reports. Latencies are of measured requests only,
// from just before the request is written to the end of the response body.
type result struct {
	Label       string           `json:"label,omitempty"`
	Target      string           `json:"target"`
	Policies    int              `json:"policies,omitempty"`
	Placement   string           `json:"placement,omitempty"`
	Concurrency int              `json:"concurrency"`
	Mix         string           `json:"mix"`
	NumCPU      int              `json:"numCPU"`
	Seconds     float64          `json:"seconds"`
	Requests    int64            `json:"requests"`
	PerKind     map[string]int64 `json:"perKind"`
	Throughput  float64          `json:"reviewsPerSecond"`
	LatencyUS   map[string]int64 `json:"latencyMicros"` // min p50 p90 p99 p99.9 max mean
	Errors      errorCounts      `json:"errors"`
	FirstError  string           `json:"firstError,omitempty"`
	// CPU time per measured review, in microseconds, of the server (self-
	// contained mode only) and of the load generator.
	ServerCPUPerReviewUS float64 `json:"serverCPUPerReviewMicros,omitempty"`
	ClientCPUPerReviewUS float64 `json:"clientCPUPerReviewMicros"`
	ServerCPUCores       float64 `json:"serverCPUCores,omitempty"`
	ClientCPUCores       float64 `json:"clientCPUCores"`
}

func (r *result) print(w io.Writer, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
		return
	}
	if r.Label != "" {
		fmt.Fprintf(w, "%s\n", r.Label)
	}
	fmt.Fprintf(w, "target       %s", r.Target)
	if r.Policies > 0 {
		fmt.Fprintf(w, " (self-contained child process, %d policies, %s)", r.Policies, r.Placement)
	}
	fmt.Fprintf(w, "\nload         concurrency %d, mix %s, %d CPUs shared by server and load generator\n", r.Concurrency, r.Mix, r.NumCPU)
	kinds := make([]string, 0, len(r.PerKind))
	for k, n := range r.PerKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	fmt.Fprintf(w, "requests     %d in %.2fs (%s)\n", r.Requests, r.Seconds, strings.Join(kinds, ", "))
	fmt.Fprintf(w, "throughput   %.0f reviews/s\n", r.Throughput)
	l := r.LatencyUS
	fmt.Fprintf(w, "latency      min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)\n",
		us(l["min"]), us(l["p50"]), us(l["p90"]), us(l["p99"]), us(l["p99.9"]), us(l["max"]), us(l["mean"]))
	if r.ServerCPUPerReviewUS > 0 {
		fmt.Fprintf(w, "cpu          server %.1f µs/review (%.2f cores), load generator %.1f µs/review (%.2f cores)\n",
			r.ServerCPUPerReviewUS, r.ServerCPUCores, r.ClientCPUPerReviewUS, r.ClientCPUCores)
	} else {
		fmt.Fprintf(w, "cpu          load generator %.1f µs/review (%.2f cores)\n", r.ClientCPUPerReviewUS, r.ClientCPUCores)
	}
	e := r.Errors
	fmt.Fprintf(w, "errors       %d (transport %d, http status %d, bad response %d, wrong uid %d, unexpected decision %d)\n",
		e.total(), e.Transport, e.HTTPStatus, e.BadResponse, e.WrongUID, e.Decision)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error  %s\n", r.FirstError)
	}
}

func us(v int64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fms", float64(v)/1000)
	}
	return fmt.Sprintf("%dµs", v)
}

// template is one request kind, its body with a patchable uid.
type template struct {
	entry  mixEntry
	body   []byte
	uidPos int
}

// admissionResponse is what the client reads of a response.
type admissionResponse struct {
	Response *struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
		Status  *struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	} `json:"response"`
}

type workerResult struct {
	latencies []int64 // ns
	perKind   []int64
	errors    errorCounts
	firstErr  string
}

func run(ctx context.Context, o options) (*result, error) {
	target, caFile := o.url, o.ca
	var srv *server
	if target == "" {
		var err error
		if srv, err = startServer(o); err != nil {
			return nil, err
		}
		defer srv.stop()
		target, caFile = srv.info.URL, srv.info.CA
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	var clientCerts []tls.Certificate
	if o.cert != "" {
		c, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		clientCerts = []tls.Certificate{c}
	}

	// The schedule: each kind as often as its weight, interleaved.
	var tmpls []template
	var schedule []int
	var mixDesc []string
	for i, e := range o.mix {
		body := e.c.Review(uidTemplate)
		tmpls = append(tmpls, template{entry: e, body: body, uidPos: bytes.Index(body, []byte(uidTemplate))})
		mixDesc = append(mixDesc, fmt.Sprintf("%s=%d", e.name, e.weight))
		for range e.weight {
			schedule = append(schedule, i)
		}
	}
	rng := uint64(0x9e3779b97f4a7c15)
	for i := len(schedule) - 1; i > 0; i-- { // a fixed shuffle
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		j := int(rng % uint64(i+1))
		schedule[i], schedule[j] = schedule[j], schedule[i]
	}

	var (
		seq        atomic.Int64 // uids
		measured   atomic.Int64 // measured requests started
		start      = time.Now()
		measureAt  = start.Add(o.warmup)
		end        = measureAt.Add(o.duration)
		results    = make([]workerResult, o.concurrency)
		wg         sync.WaitGroup
		capReached atomic.Bool
	)
	ctx, cancel := context.WithDeadline(ctx, end.Add(10*time.Second))
	defer cancel()

	var srvCPU0, cliCPU0 time.Duration
	var cpuOnce sync.Once
	markStart := func() {
		cpuOnce.Do(func() {
			cliCPU0 = processCPU()
			if srv != nil {
				srvCPU0, _ = srv.cpu()
			}
		})
	}
	if o.warmup == 0 {
		markStart()
	} else {
		t := time.AfterFunc(o.warmup, markStart)
		defer t.Stop()
	}

	for w := range o.concurrency {
		wg.Go(func() {
			res := &results[w]
			res.perKind = make([]int64, len(tmpls))
			res.latencies = make([]int64, 0, 4096)
			tr := &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: clientCerts, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12},
				TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
				ForceAttemptHTTP2:   false,
				MaxIdleConnsPerHost: 1,
				DisableCompression:  true,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			bodies := make([][]byte, len(tmpls))
			for i, t := range tmpls {
				bodies[i] = slices.Clone(t.body)
			}
			respBuf := bytes.NewBuffer(make([]byte, 0, 4096))
			fail := func(counter *int64, format string, args ...any) {
				*counter++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf(format, args...)
				}
			}
			for i := w; ; i++ {
				now := time.Now()
				if now.After(end) || ctx.Err() != nil || capReached.Load() {
					return
				}
				measuring := !now.Before(measureAt)
				if measuring && o.requests > 0 && measured.Add(1) > o.requests {
					capReached.Store(true)
					return
				}
				k := schedule[i%len(schedule)]
				t, body := tmpls[k], bodies[k]
				uid := fmt.Sprintf("%s%012x", uidTemplate[:len(uidTemplate)-12], seq.Add(1))
				copy(body[t.uidPos:], uid)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
				if err != nil {
					fail(&res.errors.Transport, "%v", err)
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				var status int
				if err == nil {
					respBuf.Reset()
					_, err = respBuf.ReadFrom(resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				lat := time.Since(t0)
				if !measuring {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					fail(&res.errors.Transport, "%v", err)
					continue
				}
				res.latencies = append(res.latencies, int64(lat))
				res.perKind[k]++
				if status != http.StatusOK {
					fail(&res.errors.HTTPStatus, "HTTP %d: %.200s", status, respBuf.Bytes())
					continue
				}
				var ar admissionResponse
				if err := json.Unmarshal(respBuf.Bytes(), &ar); err != nil || ar.Response == nil {
					fail(&res.errors.BadResponse, "%s: not an AdmissionReview response (%v): %.200s", t.entry.name, err, respBuf.Bytes())
					continue
				}
				if ar.Response.UID != uid {
					fail(&res.errors.WrongUID, "%s: uid %q, sent %q", t.entry.name, ar.Response.UID, uid)
					continue
				}
				msg := ""
				if ar.Response.Status != nil {
					msg = ar.Response.Status.Message
				}
				if err := t.entry.c.Check(ar.Response.Allowed, msg); err != nil {
					fail(&res.errors.Decision, "%v", err)
				}
			}
		})
	}
	wg.Wait()
	stopped := time.Now()
	markStart() // a run shorter than its warm-up
	cliCPU := processCPU() - cliCPU0
	var srvCPU time.Duration
	if srv != nil {
		c, err := srv.cpu()
		if err != nil {
			return nil, fmt.Errorf("server CPU time: %w\n%s", err, srv.stderr)
		}
		srvCPU = c - srvCPU0
	}
	if ctx.Err() != nil && time.Now().Before(end) {
		return nil, ctx.Err() // interrupted
	}

	r := &result{
		Label: o.label, Target: target, Concurrency: o.concurrency, Mix: strings.Join(mixDesc, ","),
		NumCPU: runtime.NumCPU(), PerKind: map[string]int64{}, LatencyUS: map[string]int64{},
	}
	if srv != nil {
		r.Policies, r.Placement = srv.info.Policies, string(o.placement)
	}
	var all []int64
	for _, wr := range results {
		all = append(all, wr.latencies...)
		for k, n := range wr.perKind {
			r.PerKind[tmpls[k].entry.name] += n
		}
		r.Errors.add(wr.errors)
		if r.FirstError == "" {
			r.FirstError = wr.firstErr
		}
	}
	r.Requests = int64(len(all)) + r.Errors.Transport
	// The window ends when the last worker stopped: requests started
	// before the deadline count, so does the time they took.
	elapsed := stopped.Sub(measureAt)
	r.Seconds = elapsed.Seconds()
	if r.Seconds > 0 {
		r.Throughput = float64(len(all)) / r.Seconds
		r.ClientCPUCores = cliCPU.Seconds() / r.Seconds
		r.ServerCPUCores = srvCPU.Seconds() / r.Seconds
	}
	if len(all) > 0 {
		slices.Sort(all)
		var sum float64
		for _, v := range all {
			sum += float64(v)
		}
		q := func(p float64) int64 {
			i := int(math.Ceil(p*float64(len(all)))) - 1
			return all[max(0, min(i, len(all)-1))] / 1000
		}
		r.LatencyUS["min"] = all[0] / 1000
		r.LatencyUS["p50"] = q(0.50)
		r.LatencyUS["p90"] = q(0.90)
		r.LatencyUS["p99"] = q(0.99)
		r.LatencyUS["p99.9"] = q(0.999)
		r.LatencyUS["max"] = all[len(all)-1] / 1000
		r.LatencyUS["mean"] = int64(sum / float64(len(all)) / 1000)
		r.ClientCPUPerReviewUS = float64(cliCPU.Microseconds()) / float64(len(all))
		if srv != nil {
			r.ServerCPUPerReviewUS = float64(srvCPU.Microseconds()) / float64(len(all))
		}
	}
	if r.Requests == 0 {
		return r, errors.New("no request completed")
	}
	return r, nil
}
