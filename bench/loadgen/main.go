// Command loadgen sends real AdmissionReview requests to loopguard's
// exposure webhook over HTTPS on 127.0.0.1 and reports throughput and the
// latency distribution (docs/benchmarks.md).
//
// Self-contained (the default): it re-executes itself with --serve, a child
// process serving webhooks.ExposureValidator through webhooks.ReviewHandler
// (as cmd/manager does) on controller-runtime's webhook server on 127.0.0.1 (self-signed certificate in a temp dir, policy
// index prepared from test/workload), loads it, asks it for its CPU
// time, and stops it. Against a running webhook: --url and --ca.
//
// From the repository root (bench/ is a Go module of its own):
//
//	go -C bench build -o "$PWD/bin/loadgen" ./loadgen
//	bin/loadgen --concurrency 8 --duration 10s
//	bin/loadgen --policies 10000 --placement one-namespace
//	bin/loadgen --serve                      # serve only, until Ctrl-C
//	bin/loadgen --url https://127.0.0.1:9443/validate-exposure --ca .dev/pki/webhook/ca.crt \
//	  --cert .dev/pki/webhook/apiserver-client.crt --key .dev/pki/webhook/apiserver-client.key
//
// Only 127.0.0.1 is ever served or targeted. Clients are keep-alive
// HTTP/1.1, one connection per worker. Every response is checked: HTTP 200,
// the request's uid echoed, and the decision the workload expects (against
// --url, a server with other policies fails this check: its decisions
// count as errors). Exit status 1 when any request failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loopguard/loopguard/test/workload"
)

const (
	maxDuration = 60 * time.Second
	maxWarmup   = 10 * time.Second
)

type options struct {
	url, ca      string
	cert, key    string
	serveOnly    bool
	stdinControl bool
	port         int
	policies     int
	placement    workload.Placement
	concurrency  int
	duration     time.Duration
	warmup       time.Duration
	requests     int64
	mix          []mixEntry
	jsonOut      bool
	jsonFile     string
	auditLog     string
	cpuProfile   string
	label        string
}

type mixEntry struct {
	name   string
	c      workload.Case
	weight int
}

// mixCases maps the names --mix accepts to workload cases.
var mixCases = map[string]string{
	"allowed-pod":     workload.AllowPod,
	"denied-pod":      workload.DenyPod,
	"denied-pod-10":   workload.Pod10,
	"service":         workload.DenySvc,
	"allowed-service": workload.AllowSvc,
}

func parseMix(s string) ([]mixEntry, error) {
	all := workload.AllCases()
	var out []mixEntry
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			w = "1"
		}
		weight, err := strconv.Atoi(w)
		if err != nil || weight < 0 || weight > 100 {
			return nil, fmt.Errorf("--mix %q: weight of %s must be 0..100", s, name)
		}
		caseName, ok := mixCases[name]
		if !ok {
			names := make([]string, 0, len(mixCases))
			for n := range mixCases {
				names = append(names, n)
			}
			slices.Sort(names)
			return nil, fmt.Errorf("--mix %q: unknown kind %q (known: %s)", s, name, strings.Join(names, ", "))
		}
		if weight > 0 {
			out = append(out, mixEntry{name: name, c: all[caseName], weight: weight})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--mix %q: no request kind", s)
	}
	return out, nil
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "load a running webhook at this https://127.0.0.1:PORT/PATH instead of starting one")
	fs.StringVar(&o.ca, "ca", "", "PEM CA bundle that signed the --url server's certificate")
	fs.StringVar(&o.cert, "cert", "", "client certificate for a --url webhook that authenticates its callers (--webhook-client-ca; make dev: .dev/pki/webhook/apiserver-client.crt)")
	fs.StringVar(&o.key, "key", "", "client key for --cert")
	fs.BoolVar(&o.serveOnly, "serve", false, "only serve the webhook (prints its URL and CA as JSON) until Ctrl-C or stdin EOF")
	fs.BoolVar(&o.stdinControl, "stdin-control", false, "with --serve: answer \"cpu\" lines on stdin and exit at its EOF (how loadgen drives its child)")
	fs.IntVar(&o.port, "port", 0, "port of the self-contained server on 127.0.0.1 (0: a free one)")
	fs.IntVar(&o.policies, "policies", 1000, "LoopbackServices in the self-contained server's index")
	placement := fs.String("placement", string(workload.Spread), "where the policies live: spread (one per namespace), one-namespace (all in the reviewed one), one-namespace-same-port (each also protects 15000) or one-namespace-all-select (each selects the reviewed pods)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent workers, each with its own keep-alive HTTP/1.1 connection (1..1024)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration (max 60s)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before it (max 10s)")
	fs.Int64Var(&o.requests, "requests", 0, "stop after this many measured requests (0: no cap)")
	mix := fs.String("mix", "allowed-pod=1,denied-pod=1,service=1", "request kinds and weights: allowed-pod, denied-pod (1 container), denied-pod-10 (10 containers), service (5 ports, denied), allowed-service")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object")
	fs.StringVar(&o.jsonFile, "json-file", "", "also append the result, as one JSON line, to this file")
	fs.StringVar(&o.auditLog, "audit-log", "", "self-contained server: write the validator's audit log here (default: encoded, then discarded)")
	fs.StringVar(&o.cpuProfile, "server-cpuprofile", "", "self-contained server: write a CPU profile of the measured window here")
	fs.StringVar(&o.label, "label", "", "free text printed with the result")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.placement = workload.Placement(*placement)
	if !slices.Contains([]workload.Placement{workload.Spread, workload.OneNamespace, workload.OneNamespaceSamePort, workload.OneNamespaceAllSelect}, o.placement) {
		return o, fmt.Errorf("--placement %q: want spread, one-namespace, one-namespace-same-port or one-namespace-all-select", *placement)
	}
	if o.policies < 1 || o.policies > 100000 {
		return o, fmt.Errorf("--policies %d: want 1..100000", o.policies)
	}
	if o.port < 0 || o.port > 65535 {
		return o, fmt.Errorf("--port %d: want 0..65535", o.port)
	}
	if o.serveOnly {
		return o, nil
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		return o, fmt.Errorf("--concurrency %d: want 1..1024", o.concurrency)
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return o, fmt.Errorf("--duration %s: want more than 0 and at most %s", o.duration, maxDuration)
	}
	if o.warmup < 0 || o.warmup > maxWarmup {
		return o, fmt.Errorf("--warmup %s: want 0..%s", o.warmup, maxWarmup)
	}
	if o.requests < 0 {
		return o, fmt.Errorf("--requests %d: want >= 0", o.requests)
	}
	var err error
	if o.mix, err = parseMix(*mix); err != nil {
		return o, err
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil {
			return o, fmt.Errorf("--url: %w", err)
		}
		if u.Scheme != "https" || u.Hostname() != "127.0.0.1" {
			return o, fmt.Errorf("--url %q: only https://127.0.0.1 is allowed", o.url)
		}
		if o.ca == "" {
			return o, errors.New("--url needs --ca")
		}
		if o.cpuProfile != "" {
			return o, errors.New("--server-cpuprofile needs the self-contained server (no --url)")
		}
	} else if o.ca != "" || o.cert != "" {
		return o, errors.New("--ca and --cert need --url")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.serveOnly {
		if err := serve(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen --serve:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	res.print(os.Stdout, o.jsonOut)
	if o.jsonFile != "" {
		f, err := os.OpenFile(o.jsonFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			res.print(f, true)
			err = f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
	}
	if res.Errors.total() > 0 || res.Requests == 0 {
		os.Exit(1)
	}
}
