package main

import (
	"context"
	"fmt"
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

func benchPodFor() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: benchNS, Labels: map[string]string{"app": "cart"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.invalid/app:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}}},
			{Name: "envoy", Image: "registry.invalid/envoy:1", Ports: []corev1.ContainerPort{{ContainerPort: 9901}}},
		}},
	}
}

// budget bounds one measurement: at most max requests or the time, at
// least min requests.
type budget struct {
	max, min int
	time     time.Duration
}

func (e *env) budget(concurrency int) budget {
	if e.opts.quick {
		if concurrency == 1 {
			return budget{max: 80, min: 5, time: 3 * time.Second}
		}
		return budget{max: 320, min: 32, time: 3 * time.Second}
	}
	if concurrency == 1 {
		return budget{max: 200, min: 5, time: 5 * time.Second}
	}
	return budget{max: 800, min: 32, time: 5 * time.Second}
}

// measure times dry-run creates of a pod every policy selects and admits.
func (e *env) measure(ctx context.Context, concurrency int) (stats, error) {
	b := e.budget(concurrency)
	// Warm up connections and caches.
	for i := 0; i < 5; i++ {
		if _, err := e.cs.CoreV1().Pods(benchNS).Create(ctx, benchPodFor(), dryRun); err != nil {
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
				stop := issued >= b.max || (issued >= b.min && time.Since(start) > b.time) || firstErr != nil
				if !stop {
					issued++
				}
				mu.Unlock()
				if stop {
					return
				}
				t0 := time.Now()
				_, err := e.cs.CoreV1().Pods(benchNS).Create(ctx, benchPodFor(), dryRun)
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
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := len(lat)
	return stats{n: n, p50: lat[n/2], p99: lat[min(n-1, n*99/100)], rps: float64(n) / elapsed.Seconds()}, nil
}

// measureBaseline measures with no engine registered.
func (e *env) measureBaseline(ctx context.Context, rep *report) error {
	e.logf("baseline: no admission policy")
	for _, c := range []int{1, 16} {
		for r := 0; r < e.opts.rounds; r++ {
			s, err := e.measure(ctx, c)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			rep.baseline[c] = append(rep.baseline[c], s)
		}
	}
	return nil
}

// auxRSS is the memory of one of an engine's other processes.
type auxRSS struct {
	name         string
	cases, atMax float64
}

// auxProcesses is implemented by engines with more than one process.
type auxProcesses interface {
	Aux() map[string]int
}

func readAux(eng engine) []auxRSS {
	a, ok := eng.(auxProcesses)
	if !ok {
		return nil
	}
	var out []auxRSS
	for name, pid := range a.Aux() {
		out = append(out, auxRSS{name: name, cases: rssMiB(pid)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
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
}

func (e *env) runEngine(ctx context.Context, eng engine) (res engineResult, err error) {
	res = engineResult{name: eng.Name(), policyInstall: map[int]time.Duration{}}
	e.logf("%s: starting", eng.Name())
	t0 := time.Now()
	defer func() {
		e.logf("%s: tearing down", eng.Name())
		eng.Stop(ctx)
		_ = eng.SetBenchPolicies(ctx, 0)
		_ = eng.RemoveCasePolicies(ctx)
	}()
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
	// Let informers and the engines' caches settle before reading memory.
	time.Sleep(5 * time.Second)
	res.rssCases = rssMiB(eng.PID())
	res.aux = readAux(eng)
	if err := eng.RemoveCasePolicies(ctx); err != nil {
		return res, err
	}
	if err := e.waitAdmits(ctx, casesNS, 15000, 2*time.Minute); err != nil {
		return res, fmt.Errorf("case policy still enforced after removal: %w", err)
	}
	for _, n := range e.opts.counts {
		t1 := time.Now()
		if err := eng.SetBenchPolicies(ctx, n); err != nil {
			return res, err
		}
		err := e.waitEnforced(ctx, benchNS, int32(benchPort(n-1)), 3*time.Minute)
		if err == nil {
			err = e.waitEnforced(ctx, benchNS, int32(benchPort(0)), time.Minute)
		}
		if err != nil {
			// Recorded, and larger N skipped: an engine that cannot
			// enforce N policies in time will not do better with more.
			e.logf("%s: %d policies: %v", eng.Name(), n, err)
			for _, c := range []int{1, 16} {
				res.points = append(res.points, point{policies: n, concurrency: c, err: "not enforced: " + err.Error()})
			}
			break
		}
		res.policyInstall[n] = time.Since(t1)
		// Let the engine's controllers finish reacting to the new policies
		// (status, reports, loopguard's NetworkPolicies) before timing.
		time.Sleep(5 * time.Second)
		e.logf("%s: %d policies enforced after %s", eng.Name(), n, res.policyInstall[n].Round(time.Second))
		for _, c := range []int{1, 16} {
			p := point{policies: n, concurrency: c}
			for r := 0; r < e.opts.rounds; r++ {
				s, err := e.measure(ctx, c)
				if err != nil {
					p.err = err.Error()
					break
				}
				p.rounds = append(p.rounds, s)
			}
			res.points = append(res.points, p)
			if p.err != "" {
				e.logf("%s: %d policies, concurrency %d: %s", eng.Name(), n, c, p.err)
			} else {
				e.logf("%s: %d policies, concurrency %d: p50 %s", eng.Name(), n, c, medianDur(p.rounds, func(s stats) time.Duration { return s.p50 }))
			}
		}
		res.rssMax, res.rssMaxPolicies = rssMiB(eng.PID()), n
		for i, a := range readAux(eng) {
			if i < len(res.aux) && res.aux[i].name == a.name {
				res.aux[i].atMax = a.cases
			}
		}
	}
	// Down: the case policy again, the engine stopped, its webhooks left.
	if err := eng.SetBenchPolicies(ctx, 0); err != nil {
		return res, err
	}
	if eng.PID() != 0 {
		if err := eng.InstallCasePolicies(ctx); err != nil {
			return res, err
		}
		if err := e.waitEnforced(ctx, casesNS, 15000, 3*time.Minute); err != nil {
			return res, err
		}
		if err := eng.Kill(ctx); err != nil {
			return res, err
		}
		time.Sleep(2 * time.Second)
		_, err := e.cs.CoreV1().Pods(casesNS).Create(ctx, casePod(casesNS, "while-down", 15000, ""), dryRun)
		res.killed = classifyDown(err)
		e.logf("%s: engine down: %s", eng.Name(), res.killed.outcome)
	}
	return res, nil
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
	return v[len(v)/2]
}
