// Command scalelarge measures loopguard at the Kubernetes scalability
// envelope (issue 18): 5,000 kwok nodes, 150,000 pods in 1,500 namespaces
// (2% hostNetwork), 10,000 LoopbackServices and 20 ClusterLoopbackServices
// with overlapping selectors, and one NodeBindReport per node written at the
// rate real agents write. It reports the time until every managed
// NetworkPolicy exists and every status is current, how fast a changed pod
// and a changed report show, the manager's API writes in a quiet window, its
// memory at 10k/50k/150k pods, admission p50/p99 at the largest size against
// 1,000 pods, and the API server's and etcd's memory. It runs kwok itself
// against a node-less dev control plane (make bench-scale-large) and refuses
// sizes above the envelope.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/loopguard/loopguard/bench/internal/proc"
)

var (
	lbsGVR  = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "loopbackservices"}
	clbsGVR = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "clusterloopbackservices"}
	nbrGVR  = schema.GroupVersionResource{Group: "loopguard.io", Version: "v1alpha1", Resource: "nodebindreports"}
)

type bench struct {
	size    Size
	cs      *kubernetes.Clientset
	dyn     dynamic.Interface
	workers int
	podUIDs []types.UID
	running *runningPods
	start   time.Time
	// cpu meters the control plane's processes; cpu0 is its reading at
	// the first policy's creation.
	cpu  cpuMeter
	cpu0 map[string]float64
	t0   time.Time
}

func (b *bench) logf(format string, args ...any) {
	fmt.Printf("[%7s] %s\n", time.Since(b.start).Round(time.Second), fmt.Sprintf(format, args...))
}

func main() {
	scale := flag.String("scale", "large", "preset: large (5,000 nodes, 150,000 pods) or small (50 nodes, 1,500 pods)")
	devDir := flag.String("dev-dir", ".dev-scale", "the dev control plane's directory (kubeconfig, run/*.pid)")
	nodes := flag.Int("nodes", 0, "override the preset's nodes")
	pods := flag.Int("pods", 0, "override the preset's pods")
	namespaces := flag.Int("namespaces", 0, "override the preset's namespaces")
	policies := flag.Int("policies", 0, "override the preset's LoopbackServices")
	kwokBin := flag.String("kwok", "bin/kwok", "the kwok binary")
	kwokConfig := flag.String("kwok-config", "bin/kwok-config", "the program printing kwok's configuration")
	lease := flag.Int("node-lease-seconds", 0, "kwok's node lease duration; renewed every quarter of it (default 40, the kubelet's; 600 above 1,000 nodes, so 5,000 nodes renew ~33 leases/s, not 500; make bench-scale-large raises the node grace period to match)")
	quiet := flag.Duration("quiet", 5*time.Minute, "quiet window to count the manager's writes in")
	admissionN := flag.Int("admission-requests", 1000, "dry-run pod creations per admission measurement (at least 1,000)")
	workers := flag.Int("workers", 16, "parallel creations")
	timeout := flag.Duration("timeout", 30*time.Minute, "longest wait for convergence")
	pprof := flag.String("manager-pprof", "127.0.0.1:6265", "the manager's --pprof-bind-address, to read its live heap (empty: RSS only)")
	managerMetrics := flag.String("manager-metrics", "", "the manager's metrics URL in plain HTTP (--metrics-secure=false), to count its reconciles by controller; empty: not counted")
	profiles := flag.String("profiles", "", "directory to save the manager's heap profiles in (with pods only at the largest checkpoint, at convergence, after the quiet window); empty: none")
	floor := flag.Bool("floor", false, "stop the manager before the policies and converge them from the bench, writing only each policy's NetworkPolicies and one status patch: the least this machine needs (floor.go); ends after convergence")
	cleanup := flag.Bool("cleanup", true, "delete what the run made (make bench-scale-large skips it: the control plane goes down)")
	flag.Parse()

	b := &bench{workers: *workers, start: time.Now()}
	switch *scale {
	case "large":
		b.size = Large
	case "small":
		b.size = Small
	default:
		fail(fmt.Errorf("-scale %q: want large or small", *scale))
	}
	for _, o := range []struct{ flag, into *int }{{nodes, &b.size.Nodes}, {pods, &b.size.Pods}, {namespaces, &b.size.Namespaces}, {policies, &b.size.Policies}} {
		if *o.flag != 0 {
			*o.into = *o.flag
		}
	}
	if err := b.size.Validate(); err != nil {
		fail(err)
	}
	if *admissionN < 1000 || *admissionN > 20000 || *workers < 1 || *workers > 64 {
		fail(fmt.Errorf("-admission-requests must be 1000..20000, -workers 1..64"))
	}
	if *lease == 0 {
		*lease = 40
		if b.size.Nodes > 1000 {
			// 5,000 nodes renewing every 30 s starved kwok on 2 cores: leases
			// lagged, nodes went NotReady, the node lifecycle controller
			// marked their pods NotReady and kwok replayed its pod stages
			// on them (third large run). Every 150 s, with the controller
			// manager's grace period raised to match (bench.mk).
			*lease = 600
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(*devDir, "kubeconfig"))
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = 2000, 2000
	b.cs = kubernetes.NewForConfigOrDie(cfg)
	b.dyn = dynamic.NewForConfigOrDie(cfg)
	b.podUIDs = make([]types.UID, b.size.Pods)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := filepath.Join(*devDir, "run")

	b.logf("size %+v, %d NetworkPolicies expected; kwok node lease %ds (renewed every %ds)", b.size, b.size.ExpectedNetworkPolicies(), *lease, *lease/4)
	stopKwok, kwokPID := startKwok(*kwokBin, *kwokConfig, *devDir, *lease)
	atExit = append(atExit, stopKwok)
	b.cpu = cpuMeter{"kwok": kwokPID, "bench": os.Getpid()}
	for _, c := range []string{"manager", "kube-apiserver", "etcd", "kube-controller-manager"} {
		b.cpu[c] = proc.ReadPID(filepath.Join(run, c+".pid"))
	}
	if *cleanup {
		atExit = append(atExit, func() { b.cleanup(context.Background()) })
	}
	atExit = append(atExit, cancel) // the agents stop before the cleanup
	defer runAtExit()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		fail(fmt.Errorf("%s", <-sig))
	}()
	b.running = startRunningPods(ctx, cfg)
	b.setupAdmission(ctx)
	nodeUIDs := b.createNodes(ctx)
	b.createNamespaces(ctx)

	// Pods first (a cluster that adopts loopguard), sampling the manager's
	// memory at the checkpoints and admission at 1,000 pods.
	adm1k := min(1000, b.size.Pods)
	stops := slices.Sorted(slices.Values(append(b.size.Checkpoints(), adm1k)))
	stops = slices.Compact(stops)
	var curve []Sample
	var p50small, p99small time.Duration
	prev := 0
	for _, at := range stops {
		b.createPods(ctx, prev, at)
		prev = at
		if at == adm1k {
			p50small, p99small = b.admission(ctx, fmt.Sprintf("%d pods", at), *admissionN)
		}
		if slices.Contains(b.size.Checkpoints(), at) {
			time.Sleep(10 * time.Second) // let the manager's informers take them in
			now, _ := rss(filepath.Join(run, "manager.pid"))
			live := liveHeap(ctx, *pprof)
			curve = append(curve, Sample{Pods: at, RSSKiB: now, LiveKiB: live})
			b.logf("manager RSS at %d pods: %s, live heap %s", at, mb(now), mb(live))
			if at == b.size.Pods {
				b.heapProfile(ctx, *pprof, *profiles, "pods-only")
			}
		}
	}
	b.waitRunning(ctx)

	ag := &agents{b: b, nodeUIDs: nodeUIDs, listen: map[int]int64{}, now: make(chan int, 16), ensured: make([]atomic.Bool, b.size.Nodes)}
	ag.writeAll(ctx)
	go ag.run(ctx)
	b.logf("simulated agents: one report per node every %s (%.1f writes/s), at once on a change", reportRefresh, float64(b.size.Nodes)/reportRefresh.Seconds())

	// Events too: the manager's are writes on the same API server.
	convergenceWrites := append(slices.Clone(writeResources), "events")
	writes0, _ := b.writesBy(ctx, convergenceWrites...)
	requests0, _ := b.requestsBy(ctx)
	reconciles0, _ := reconcilesBy(ctx, *managerMetrics)
	conv := b.watchConvergence(ctx)
	if *floor {
		if err := stopManager(run); err != nil {
			fail(err)
		}
		delete(b.cpu, "manager")
		b.startFloor(ctx, conv.expect, 4) // the manager's default workers
		b.logf("floor: the manager is stopped; the bench writes each policy's NetworkPolicies and one status patch, on 4 workers")
	}
	b.cpu0, b.t0 = b.cpu.read(), time.Now()
	last := b.createPolicies(ctx)
	b.converge(ctx, conv, last, *timeout)
	if writes1, err := b.writesBy(ctx, convergenceWrites...); err == nil {
		b.logf("API writes from the first policy's creation to convergence (apiserver_request_total; creates by the bench included): %s", writesSince(writes0, writes1))
	}
	if requests1, err := b.requestsBy(ctx); err == nil {
		b.logf("API requests but watches from the first policy's creation to convergence, every client: %s", writesSince(requests0, requests1))
	}
	if reconciles1, err := reconcilesBy(ctx, *managerMetrics); err == nil && !*floor {
		b.logf("manager reconciles from the first policy's creation to convergence, by controller and result: %s", writesSince(reconciles0, reconciles1))
	}
	if *floor {
		b.logf("floor: done")
		return
	}
	_, peak := rss(filepath.Join(run, "manager.pid"))
	b.logf("manager peak RSS so far: %s", mb(peak))
	b.heapProfile(ctx, *pprof, *profiles, "converged")

	b.changes(ctx, ag)

	// The changes' last effects (other policies selecting the two pods) land
	// before the window opens.
	time.Sleep(30 * time.Second)
	fp0, req0, w0 := b.fingerprint(ctx), b.writeRequests(ctx), ag.writes.Load()
	b.logf("quiet window of %s (agents keep writing reports)…", *quiet)
	time.Sleep(*quiet)
	fp1, req1 := b.fingerprint(ctx), b.writeRequests(ctx)
	diff, fields := changed(fp0, fp1)
	b.logf("quiet window: objects the manager changed: %d (target 0) %v; API write requests to policies and NetworkPolicies: %.0f; agent report writes meanwhile: %d",
		len(diff), diff[:min(len(diff), 10)], req1-req0, ag.writes.Load()-w0)
	if len(fields) > 0 {
		b.logf("quiet window: fields that changed (objects): %v", fields)
	}
	b.heapProfile(ctx, *pprof, *profiles, "quiet")

	p50, p99 := b.admission(ctx, fmt.Sprintf("%d pods", b.size.Pods), *admissionN)
	b.logf("admission %d pods vs %d pods: p50 %.2fx, p99 %.2fx (target within 1.2x)", b.size.Pods, adm1k,
		float64(p50)/float64(max(p50small, 1)), float64(p99)/float64(max(p99small, 1)))

	now, peak := rss(filepath.Join(run, "manager.pid"))
	live := liveHeap(ctx, *pprof) // after the RSS: its forced collection would lower it
	fmt.Printf("manager memory with pods only (before any bench policy):\n%s", Curve(curve))
	b.logf("manager RSS steady (after the quiet window, %d pods and %d policies) %s, peak %s (target < 600 MB at 150,000 pods); live heap %s", b.size.Pods, b.size.Policies+b.size.ClusterPolicies, mb(now), mb(peak), mb(live))
	for _, c := range []string{"kube-apiserver", "etcd"} {
		now, peak := rss(filepath.Join(run, c+".pid"))
		b.logf("%s RSS %s, peak %s", c, mb(now), mb(peak))
	}
	b.logf("done")
}

// startKwok writes kwok's configuration and runs kwok against the control
// plane, managing only the nodes annotated kwok.x-k8s.io/node=fake.
func startKwok(bin, config, devDir string, lease int) (stop func(), pid int) {
	out, err := exec.Command(config, strconv.Itoa(lease)).Output()
	if err != nil {
		fail(fmt.Errorf("%s: %w", config, err))
	}
	cfgFile := filepath.Join(devDir, "kwok.yaml")
	if err := os.WriteFile(cfgFile, out, 0o644); err != nil {
		fail(err)
	}
	logf, err := os.Create(filepath.Join(devDir, "kwok.log"))
	if err != nil {
		fail(err)
	}
	cmd := exec.Command(bin, "--kubeconfig", filepath.Join(devDir, "kubeconfig"), "--config", cfgFile,
		"--manage-nodes-with-annotation-selector", kwokAnnotation+"=fake", "--node-ip", "10.63.255.1",
		"-v", "WARN") // INFO logs every pod patch: 150,000 lines the run pays for
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		fail(fmt.Errorf("start kwok: %w", err))
	}
	var stopping atomic.Bool
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(exited)
		if !stopping.Load() {
			fail(fmt.Errorf("kwok exited (%v): see %s", err, logf.Name()))
		}
	}()
	return func() {
		stopping.Store(true)
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	}, cmd.Process.Pid
}

// atExit runs once on the way out, failed, interrupted or not (kwok, the
// cleanup), last first.
var (
	atExit   []func()
	exitOnce sync.Once
)

func runAtExit() {
	exitOnce.Do(func() {
		for i := len(atExit) - 1; i >= 0; i-- {
			atExit[i]()
		}
	})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scalelarge:", err)
	runAtExit()
	os.Exit(1)
}
