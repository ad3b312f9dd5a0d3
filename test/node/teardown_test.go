//go:build node

package node

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// This file sorts after node_test.go, so its test runs last: it stops the
// cluster (and brings it back up when done).

// hostRecord is what hack/dev.sh recorded before the node's first start
// (.dev/node-before/), read before 'down' deletes it.
type hostRecord struct {
	sysctls   map[string]string
	nftTables []string
	paths     map[string]bool
}

func readHostRecord(t *testing.T) hostRecord {
	t.Helper()
	dir := filepath.Join(devDir(), "node-before")
	if !fileExists(filepath.Join(dir, "complete")) {
		t.Fatalf("%s/complete missing: the cluster was not started with a node (DEV_NODE=require hack/dev.sh up)", dir)
	}
	rec := hostRecord{sysctls: map[string]string{}, paths: map[string]bool{}}
	for _, l := range readLines(t, filepath.Join(dir, "sysctl")) {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad line in node-before/sysctl: %q", l)
		}
		rec.sysctls[k] = v
	}
	for _, k := range []string{"kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory"} {
		if _, ok := rec.sysctls[k]; !ok {
			t.Fatalf("node-before/sysctl does not record %s", k)
		}
	}
	if fileExists(filepath.Join(dir, "nft-tables")) {
		rec.nftTables = readLines(t, filepath.Join(dir, "nft-tables"))
	}
	for _, p := range readLines(t, filepath.Join(dir, "paths")) {
		rec.paths[p] = true
	}
	return rec
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedLines(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func sysctl(key string) (string, bool) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// processesUsingDev lists processes whose command line names this
// checkout's .dev/ (every component runs with a path in it).
func processesUsingDev() []string {
	dev := devDir() + string(os.PathSeparator)
	if abs, err := filepath.Abs(dev); err == nil {
		dev = abs + string(os.PathSeparator)
	}
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, dev) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+cmd)
		}
	}
	return out
}

func mountsUnderDev() []string {
	dev, _ := filepath.Abs(devDir())
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dev+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// TestDownLeavesMachineAsItWas: `hack/dev.sh down` (what make dev-down
// runs) stops every process, unmounts, removes the interfaces, netfilter
// chains and cgroups, restores the sysctls; and a second down is a no-op.
func TestDownLeavesMachineAsItWas(t *testing.T) {
	rec := readHostRecord(t)
	// The checks below only mean something if there was a node to remove.
	if !fileExists("/sys/class/net/lgbr0") {
		t.Fatal("no lgbr0 before down: the node is not up")
	}
	if len(processesUsingDev()) == 0 || len(mountsUnderDev()) == 0 {
		t.Fatalf("before down: processes %v, mounts %v: expected a running node", processesUsingDev(), mountsUnderDev())
	}
	panicNow, _ := sysctl("kernel.panic")
	t.Logf("before down: kernel.panic=%s (recorded before the node: %s)", panicNow, rec.sysctls["kernel.panic"])

	// Whatever happens below, leave a cluster running for whoever runs next.
	t.Cleanup(func() {
		r := run(5*time.Minute, []string{"DEV_NODE=require"}, filepath.Join(repoRoot(), "hack", "dev.sh"), "up")
		if r.Err != nil {
			t.Errorf("bringing the cluster back up failed: %s", r)
		}
	})

	start := time.Now()
	r := run(3*time.Minute, nil, filepath.Join(repoRoot(), "hack", "dev.sh"), "down")
	if r.Err != nil {
		t.Fatalf("hack/dev.sh down: %s", r)
	}
	t.Logf("down took %s", time.Since(start).Round(10*time.Millisecond))

	if p := processesUsingDev(); len(p) > 0 {
		t.Errorf("processes still use .dev/:\n%s", strings.Join(p, "\n"))
	}
	if m := mountsUnderDev(); len(m) > 0 {
		t.Errorf("still mounted under .dev/:\n%s", strings.Join(m, "\n"))
	}
	if fileExists("/sys/class/net/lgbr0") {
		t.Error("interface lgbr0 still exists")
	}
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*/loopguard-dev"); len(cg) > 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	if fileExists("/sys/fs/cgroup/loopguard-dev") {
		t.Error("cgroup /sys/fs/cgroup/loopguard-dev left")
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out := run(30*time.Second, nil, save)
		if out.Err != nil {
			t.Errorf("%s: %s", save, out)
			continue
		}
		for _, l := range strings.Split(out.Stdout, "\n") {
			if strings.Contains(l, "KUBE-") || strings.Contains(l, "CNI-") || strings.Contains(l, "LGNP-") { // LGNP-: the dev enforcer's hook
				t.Errorf("%s still has: %s", save, l)
			}
		}
	}
	if out := run(30*time.Second, nil, "nft", "list", "tables"); out.Err != nil {
		t.Errorf("nft list tables: %s", out)
	} else if got, want := sortedLines(out.Stdout), sortedLines(strings.Join(rec.nftTables, "\n")); got != want {
		t.Errorf("nft tables now:\n%s\nbefore the node:\n%s", got, want)
	}
	for k, want := range rec.sysctls {
		if got, ok := sysctl(k); ok && got != want {
			t.Errorf("sysctl %s = %s, was %s before the node", k, got, want)
		}
	}
	for _, p := range []string{"/var/log/containers", "/var/lib/cni", "/run/containerd"} {
		if !rec.paths[p] && fileExists(p) {
			t.Errorf("%s exists now but did not before the node", p)
		}
	}
	for _, p := range []string{"node", "node-before", "etcd"} {
		if fileExists(filepath.Join(devDir(), p)) {
			t.Errorf(".dev/%s still exists", p)
		}
	}

	// Idempotent: a second down finds nothing to do and succeeds.
	if r := run(time.Minute, nil, filepath.Join(repoRoot(), "hack", "dev.sh"), "down"); r.Err != nil {
		t.Errorf("second hack/dev.sh down: %s", r)
	}
}
