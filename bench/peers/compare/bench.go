package main

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stats of one measured point: server-side dry-run pod creates.
type stats struct {
	n        int
	p50, p99 time.Duration
	rps      float64
}

// point is every round of one configuration.
type point struct {
	policies, concurrency int
	rounds                []stats
	err                   string
}

func benchPodFor(ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: ns, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/app:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}}},
			{Name: "envoy", Image: "registry.invalid/envoy:1", Ports: []corev1.ContainerPort{{ContainerPort: 9901}}},
		}},
	}
}

// budget bounds one round: n requests, unless the round takes longer than
// time (an engine slower than the cap gets fewer, and the report says so).
type budget struct {
	n    int
	time time.Duration
}

// minForP99 is the fewest samples for which the report prints a p99:
// below it the 99th percentile is one of the worst two samples.
const minForP99 = 1000

func (e *env) budget(concurrency int) budget {
	if e.opts.quick {
		if concurrency == 1 {
			return budget{n: 1000, time: 15 * time.Second}
		}
		return budget{n: 1000, time: 10 * time.Second}
	}
	if concurrency == 1 {
		return budget{n: 1000, time: 60 * time.Second}
	}
	return budget{n: 4000, time: 60 * time.Second}
}

// measure times dry-run creates, in ns, of a pod every policy selects and
// admits.
func (e *env) measure(ctx context.Context, ns string, concurrency int) (stats, error) {
	b := e.budget(concurrency)
	// Warm up connections and caches.
	for i := 0; i < 5; i++ {
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, benchPodFor(ns), dryRun); err != nil {
			return stats{}, fmt.Errorf("warm-up create refused: %w", err)
		}
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		issued   int
	)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				stop := issued >= b.n || time.Since(start) > b.time || firstErr != nil
				if !stop {
					issued++
				}
				mu.Unlock()
				if stop {
					return
				}
				t0 := time.Now()
				_, err := e.cs.CoreV1().Pods(ns).Create(ctx, benchPodFor(ns), dryRun)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return stats{}, firstErr
	}
	return summarize(lat, elapsed), nil
}

// summarize is one round's figures.
func summarize(lat []time.Duration, elapsed time.Duration) stats {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := len(lat)
	if n == 0 {
		return stats{}
	}
	return stats{n: n, p50: lat[n/2], p99: lat[min(n-1, n*99/100)], rps: float64(n) / elapsed.Seconds()}
}

// auxRSS is the memory of one of an engine's other processes.
type auxRSS struct {
	name         string
	cases, atMax float64
}

// auxProcesses is implemented by engines with more than one process (or,
// for the VAP, the API server it runs in).
type auxProcesses interface {
	Aux() map[string]int
}

func readAux(eng engine) []auxRSS {
	a, ok := eng.(auxProcesses)
	if !ok || eng.PID() == 0 {
		return nil
	}
	var out []auxRSS
	for name, pid := range a.Aux() {
		out = append(out, auxRSS{name: name, cases: rssMiB(pid)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// pidsOf is every process of eng, for the idle check.
func pidsOf(eng engine) map[string]int {
	out := map[string]int{}
	if pid := eng.PID(); pid != 0 {
		out[eng.Name()] = pid
	}
	if a, ok := eng.(auxProcesses); ok {
		for name, pid := range a.Aux() {
			out[eng.Name()+" "+name] = pid
		}
	}
	return out
}

// engineResult is everything measured for one engine.
type engineResult struct {
	name             string
	cases            map[string]caseResult
	rssCases, rssMax float64
	rssMaxPolicies   int
	// aux are the engine's other processes (Gatekeeper's audit), their
	// RSS read at the same two moments.
	aux           []auxRSS
	points        []point
	killed        caseResult
	startup       time.Duration
	policyInstall map[int]time.Duration
	notes         []string
	// interleaved: its rounds alternated with the other engines'; false
	// for an engine that cannot run beside another (kyverno-apicall, a
	// second Kyverno), measured in a block of its own with the baseline.
	interleaved bool
}

// runCoverage starts one engine alone, runs every case against its case
// policy, reads its memory, checks what happens when its process stops,
// and tears it down.
func (e *env) runCoverage(ctx context.Context, eng engine) (res *engineResult, err error) {
	res = &engineResult{name: eng.Name(), policyInstall: map[int]time.Duration{}}
	e.logf("%s: starting (coverage)", eng.Name())
	t0 := time.Now()
	defer func() {
		e.logf("%s: tearing down", eng.Name())
		eng.Stop(ctx)
		_ = eng.RemoveCasePolicies(ctx)
	}()
	if err := e.cleanCases(ctx); err != nil {
		return res, err
	}
	if err := e.setupPrePolicy(ctx); err != nil {
		return res, err
	}
	t0 = time.Now()
	if err := eng.Start(ctx); err != nil {
		return res, err
	}
	if err := eng.InstallCasePolicies(ctx); err != nil {
		return res, err
	}
	if err := e.waitEnforced(ctx, casesNS, 15000, 3*time.Minute); err != nil {
		return res, err
	}
	res.startup = time.Since(t0)
	e.logf("%s: enforcing after %s; running the cases", eng.Name(), res.startup.Round(time.Second))
	if err := e.setupCases(ctx); err != nil {
		return res, err
	}
	res.cases = e.runCases(ctx)
	// Read memory once the engine's caches settled: its CPU use says so.
	if _, err := waitIdle(ctx, pidsOf(eng), e.idleTimeout()); err != nil {
		e.note(eng.Name(), "not idle before the memory read after the cases: %v", err)
	}
	res.rssCases = rssMiB(eng.PID())
	res.aux = readAux(eng)
	// Down: the engine stopped, its webhooks left registered.
	if eng.PID() != 0 {
		if err := eng.Kill(ctx); err != nil {
			return res, err
		}
		_, err := e.cs.CoreV1().Pods(casesNS).Create(ctx, casePod(casesNS, "while-down", 15000, ""), dryRun)
		res.killed = classifyDown(err)
		e.logf("%s: engine down: %s %s", eng.Name(), res.killed.outcome, res.killed.detail)
	}
	return res, nil
}

// runCost starts every engine of names at once, each judging only its own
// bench namespace, and for each policy count times them round by round,
// interleaved with each other and with the baseline (no policy), each
// round once every engine's CPU use settled.
func (e *env) runCost(ctx context.Context, rep *report, names []string, results map[string]*engineResult) error {
	var engines []engine
	defer func() {
		for _, eng := range engines {
			e.logf("%s: tearing down", eng.Name())
			_ = eng.SetBenchPolicies(ctx, benchNSFor(eng.Name()), 0)
			eng.Stop(ctx)
		}
	}()
	for _, name := range names {
		eng, err := e.engine(name)
		if err != nil {
			return err
		}
		e.logf("%s: starting (cost)", name)
		engines = append(engines, eng) // stopped by the deferred teardown even if Start fails
		if err := eng.Start(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results[name].interleaved = len(names) > 1
		// What the bench policies rest on (Gatekeeper's template and its
		// constraint CRD, Kyverno's GlobalContextEntry) comes with the
		// case policies; the case policies themselves go again.
		if err := eng.InstallCasePolicies(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := eng.RemoveCasePolicies(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := e.waitAdmits(ctx, casesNS, 15000, 2*time.Minute); err != nil {
		return fmt.Errorf("a case policy is still enforced after removal: %w", err)
	}
	pids := func() map[string]int {
		out := map[string]int{"kube-apiserver": e.apiServerPID()}
		for _, eng := range engines {
			maps.Copy(out, pidsOf(eng))
		}
		return out
	}
	failed := map[string]bool{}
	for _, n := range e.opts.counts {
		var active []string
		for _, eng := range engines {
			name := eng.Name()
			if failed[name] {
				continue
			}
			ns := benchNSFor(name)
			t1 := time.Now()
			err := eng.SetBenchPolicies(ctx, ns, n)
			if err == nil {
				err = e.waitEnforced(ctx, ns, int32(benchPort(n-1)), 3*time.Minute)
			}
			if err == nil {
				err = e.waitEnforced(ctx, ns, int32(benchPort(0)), time.Minute)
			}
			if err != nil {
				// Recorded, and larger N skipped: an engine that cannot
				// enforce N policies in time will not do better with more.
				e.logf("%s: %d policies: %v", name, n, err)
				for _, c := range []int{1, 16} {
					results[name].points = append(results[name].points, point{policies: n, concurrency: c, err: "not enforced: " + err.Error()})
				}
				failed[name] = true
				_ = eng.SetBenchPolicies(ctx, ns, 0)
				continue
			}
			results[name].policyInstall[n] = time.Since(t1)
			e.logf("%s: %d policies enforced after %s", name, n, results[name].policyInstall[n].Round(time.Second))
			active = append(active, name)
		}
		points := map[string]map[int]*point{}
		for _, name := range active {
			points[name] = map[int]*point{1: {policies: n, concurrency: 1}, 16: {policies: n, concurrency: 16}}
		}
		for _, s := range interleave(append([]string{baselineName}, active...), e.opts.rounds, []int{1, 16}) {
			if s.engine != baselineName && points[s.engine][s.concurrency].err != "" {
				continue
			}
			waited, err := waitIdle(ctx, pids(), e.idleTimeout())
			if err != nil {
				rep.idleTimeouts = append(rep.idleTimeouts, fmt.Sprintf("before %s, %d policies, concurrency %d, round %d: %v", s.engine, n, s.concurrency, s.round+1, err))
			}
			st, err := e.measure(ctx, benchNSFor(s.engine), s.concurrency)
			if s.engine == baselineName {
				if err != nil {
					return fmt.Errorf("baseline: %w", err)
				}
				// Keyed by N: every engine's N policies are installed
				// while these rounds run, and the API server's own work
				// (a VAP's N bindings match every request) grows with them.
				k := baselineKey{n, s.concurrency}
				rep.baseline[k] = append(rep.baseline[k], st)
				e.logf("baseline: %d policies installed per engine, concurrency %d, round %d (after %s idle wait): %d requests, p50 %s", n, s.concurrency, s.round+1, waited.Round(time.Second), st.n, ms(st.p50))
				continue
			}
			p := points[s.engine][s.concurrency]
			if err != nil {
				p.err = err.Error()
				e.logf("%s: %d policies, concurrency %d: %s", s.engine, n, s.concurrency, p.err)
				continue
			}
			p.rounds = append(p.rounds, st)
			e.logf("%s: %d policies, concurrency %d, round %d (after %s idle wait): %d requests, p50 %s", s.engine, n, s.concurrency, s.round+1, waited.Round(time.Second), st.n, ms(st.p50))
		}
		for _, name := range active {
			results[name].points = append(results[name].points, *points[name][1], *points[name][16])
		}
		for _, eng := range engines {
			if failed[eng.Name()] {
				continue
			}
			r := results[eng.Name()]
			r.rssMax, r.rssMaxPolicies = rssMiB(eng.PID()), n
			for i, a := range readAux(eng) {
				if i < len(r.aux) && r.aux[i].name == a.name {
					r.aux[i].atMax = a.cases
				}
			}
		}
	}
	return nil
}

// classifyDown: with the engine stopped, is a violating pod admitted?
func classifyDown(err error) caseResult {
	if err == nil {
		return caseResult{outcome: "admitted (fails open)"}
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return caseResult{outcome: "refused (fails closed)", detail: s}
}

func medianDur(ss []stats, f func(stats) time.Duration) time.Duration {
	if len(ss) == 0 {
		return 0
	}
	v := make([]time.Duration, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	if len(v)%2 == 0 { // two rounds: their mean, not the slower one
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

func medianF(ss []stats, f func(stats) float64) float64 {
	if len(ss) == 0 {
		return 0
	}
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}
