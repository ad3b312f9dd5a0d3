// Command compare runs loopguard and its peers — Gatekeeper, Kyverno and a
// built-in ValidatingAdmissionPolicy — one at a time against the same dev
// control plane (hack/dev.sh with DEV_DIR=.dev-compare), with the strongest
// equivalent policy of each (bench/peers/policies), and writes what each
// catches and what each costs to docs/comparison.md. Peers run as host
// processes on 127.0.0.1 with their own certificates and webhook
// configurations; each is torn down before the next starts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// options are the command line.
type options struct {
	root      string // repository root
	devDir    string
	peersBin  string
	out       string
	quick     bool
	smoke     bool
	engines   []string
	fillPods  int
	counts    []int
	rounds    int
	keepFill  bool
	startedAt time.Time
}

// env is what every step shares.
type env struct {
	opts    options
	cfg     *rest.Config
	cs      *kubernetes.Clientset
	dyn     dynamic.Interface
	kubectl string
	kubecfg string
	logf    func(format string, args ...any)
	// notes are what an engine said while it was set up (an API server
	// refusing a policy, for example), for the report.
	notes map[string][]string
}

// note records an observation about an engine's setup for the report.
func (e *env) note(engine, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.logf("%s: %s", engine, msg)
	if !slices.Contains(e.notes[engine], msg) { // an engine starts twice: coverage, cost
		e.notes[engine] = append(e.notes[engine], msg)
	}
}

func main() {
	var o options
	var engines string
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.StringVar(&o.devDir, "dev-dir", ".dev-compare", "state directory of the dev control plane (hack/dev.sh DEV_DIR)")
	flag.StringVar(&o.peersBin, "peers-bin", "bin/peers", "directory holding the gatekeeper and kyverno binaries")
	flag.StringVar(&o.out, "out", "docs/comparison.md", "report to write (empty: none)")
	flag.BoolVar(&o.quick, "quick", os.Getenv("COMPARE_QUICK") == "1", "smaller run: 2,000 pods, 1 and 10 policies, 2 rounds, shorter rounds")
	flag.BoolVar(&o.smoke, "smoke", false, "only load each peer's policies and check that each refuses one case")
	flag.BoolVar(&o.keepFill, "keep-fill", false, "leave the filler pods in place at the end (for a rerun)")
	flag.StringVar(&engines, "engines", "loopguard,gatekeeper,kyverno,kyverno-apicall,vap", "engines to run (kyverno-apicall: the earlier Kyverno configuration, an extra row)")
	flag.Parse()
	o.engines = strings.Split(engines, ",")
	o.fillPods, o.counts, o.rounds = 10000, []int{1, 10, 100, 1000}, 3
	if o.quick {
		o.fillPods, o.counts, o.rounds = 2000, []int{1, 10}, 2
	}
	o.startedAt = time.Now()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	o.root = root
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	o.devDir, o.peersBin = abs(o.devDir), abs(o.peersBin)
	if o.out != "" {
		o.out = abs(o.out)
	}
	kubecfg := filepath.Join(o.devDir, "kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", kubecfg)
	if err != nil {
		return fmt.Errorf("failed to load %s (is the compare cluster up? DEV_DIR=.dev-compare DEV_PORT_OFFSET=100 hack/dev.sh up): %w", kubecfg, err)
	}
	cfg.QPS, cfg.Burst = 5000, 5000
	cfg.Timeout = 60 * time.Second
	e := &env{
		opts: o, cfg: cfg,
		cs:      kubernetes.NewForConfigOrDie(cfg),
		dyn:     dynamic.NewForConfigOrDie(cfg),
		kubectl: filepath.Join(root, "bin/k8s/current/kubectl"),
		kubecfg: kubecfg,
		notes:   map[string][]string{},
		logf: func(format string, args ...any) {
			fmt.Printf("[%s] %s\n", time.Since(o.startedAt).Round(time.Second), fmt.Sprintf(format, args...))
		},
	}
	if _, err := e.cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("failed to reach the compare cluster: %w", err)
	}
	if o.smoke {
		return smoke(ctx, e)
	}
	return full(ctx, e)
}

// smoke loads each engine's case policy and checks that it refuses a pod
// with a protected containerPort.
func smoke(ctx context.Context, e *env) error {
	if err := e.unregisterLoopguard(ctx); err != nil {
		return err
	}
	defer e.registerLoopguard(ctx) //nolint:errcheck // best effort on the way out
	if err := e.prepareNamespaces(ctx); err != nil {
		return err
	}
	var failed []string
	for _, name := range e.opts.engines {
		eng, err := e.engine(name)
		if err != nil {
			return err
		}
		err = func() error {
			e.logf("%s: starting", name)
			// Stopped even when Start fails half-way: a process it started
			// must not outlive the run (it would keep its port).
			defer eng.Stop(ctx)
			if err := eng.Start(ctx); err != nil {
				return err
			}
			if err := eng.InstallCasePolicies(ctx); err != nil {
				return err
			}
			return e.waitEnforced(ctx, casesNS, 15000, 3*time.Minute)
		}()
		if err != nil {
			e.logf("%s: FAIL: %v", name, err)
			failed = append(failed, name)
			continue
		}
		e.logf("%s: ok, refuses a pod with containerPort 15000", name)
	}
	if len(failed) > 0 {
		return fmt.Errorf("smoke failed for %s", strings.Join(failed, ", "))
	}
	return nil
}

// full runs the coverage cases and the cost measurement for every engine and
// writes the report.
func full(ctx context.Context, e *env) error {
	rep := &report{opts: e.opts}
	rep.collectVersions(e)
	if err := e.unregisterLoopguard(ctx); err != nil {
		return err
	}
	defer e.registerLoopguard(ctx) //nolint:errcheck // best effort on the way out
	if err := e.prepareNamespaces(ctx); err != nil {
		return err
	}
	e.logf("creating %d filler pods (Pending: the cluster has no node)", e.opts.fillPods)
	if err := e.fillPods(ctx, e.opts.fillPods); err != nil {
		return err
	}
	if !e.opts.keepFill {
		defer e.deleteFillPods(ctx)
	}
	// Coverage: one engine at a time, alone on the cluster.
	results := map[string]*engineResult{}
	for _, name := range e.opts.engines {
		eng, err := e.engine(name)
		if err != nil {
			return err
		}
		res, err := e.runCoverage(ctx, eng)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results[name] = res
	}
	// Cost: every engine at once, rounds interleaved. Two Kyverno
	// configurations cannot run side by side (one set of webhook
	// configurations, one kyverno namespace): kyverno-apicall gets a block
	// of its own, interleaved with the baseline only.
	var together, apart []string
	for _, name := range e.opts.engines {
		if name == "kyverno-apicall" {
			apart = append(apart, name)
		} else {
			together = append(together, name)
		}
	}
	if len(together) > 0 {
		if err := e.runCost(ctx, rep, together, results); err != nil {
			return err
		}
	}
	for _, name := range apart {
		if err := e.runCost(ctx, rep, []string{name}, results); err != nil {
			return err
		}
	}
	for _, name := range e.opts.engines {
		results[name].notes = e.notes[name]
		rep.engines = append(rep.engines, *results[name])
	}
	rep.duration = time.Since(e.opts.startedAt)
	if e.opts.out == "" {
		return nil
	}
	if err := os.WriteFile(e.opts.out, []byte(rep.markdown()), 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", e.opts.out, err)
	}
	e.logf("wrote %s (run took %s)", e.opts.out, rep.duration.Round(time.Second))
	return nil
}

func (e *env) engine(name string) (engine, error) {
	switch name {
	case "loopguard":
		return &loopguardEngine{e: e}, nil
	case "gatekeeper":
		return &gatekeeperEngine{e: e}, nil
	case "kyverno":
		return &kyvernoEngine{e: e}, nil
	case "kyverno-apicall":
		return &kyvernoEngine{e: e, apicall: true}, nil
	case "vap":
		return &vapEngine{e: e}, nil
	}
	return nil, fmt.Errorf("unknown engine %q (want loopguard, gatekeeper, kyverno, kyverno-apicall or vap)", name)
}
