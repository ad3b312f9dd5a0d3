package bindscan

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// benchPods starts n pods: each one process in its own network namespace
// and cgroupfs pod cgroup, listening on TCP 0.0.0.0:15000 (a finding), TCP
// 127.0.0.1:15001 and UDP 0.0.0.0:15002 (a finding); every pod is
// protected on 15000-15002 TCP and UDP. ownEhash gives each namespace its
// own TCP established table (net.ipv4.tcp_child_ehash_entries=1024).
func benchPods(b *testing.B, n int, ownEhash bool) []Target {
	l := layouts[0]
	root := testRoot(b, l)
	ranges := []PortRange{{Protocol: TCP, From: 15000, To: 15002}, {Protocol: UDP, From: 15000, To: 15002}}
	targets := make([]Target, 0, n)
	for range n {
		c := startChildWith(b, []string{"tcp4://0.0.0.0:15000", "tcp4://127.0.0.1:15001", "udp4://0.0.0.0:15002"}, func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
			if ownEhash {
				cmd.Env = append(cmd.Env, envOwnEhash+"=1")
			}
		})
		uid := newUID(b)
		placeInCgroup(b, filepath.Join(root, l.podDir(uid), newContainerID(b)), c.PID)
		targets = append(targets, Target{UID: uid, Ranges: ranges})
	}
	return targets
}

// BenchmarkScan is one Scan of a node of 100 pods (benchPods), as the
// agent's DaemonSet runs it (pods found through /proc/<pid>/cgroup): find
// the pods among every process of the machine, read each namespace's four
// tables, map the findings' inodes to processes. The kernel walks its
// whole TCP established table for every read of tcp and tcp6, and that
// table is shared by all namespaces unless tcp_child_ehash_entries gives
// each its own: both are measured; and discovery over unprotected pods
// (every socket mapped to its process).
func BenchmarkScan(b *testing.B) {
	for _, v := range []struct {
		name     string
		ownEhash bool
		discover bool
	}{{"pods=100/ehash=global", false, false}, {"pods=100/ehash=per-netns", true, false}, {"pods=100/ehash=global/discovery", false, true}} {
		b.Run(v.name, func(b *testing.B) {
			targets := benchPods(b, 100, v.ownEhash)
			if v.discover { // unprotected pods, as discovery sees them
				for i := range targets {
					targets[i].Discover, targets[i].Ranges = true, nil
				}
			}
			s := &Scanner{ProcRoot: "/proc"}
			b.ReportAllocs()
			for b.Loop() {
				results, err := s.Scan(targets)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range results {
					if v.discover {
						if len(r.Discovered) != 3 || len(r.Listeners) != 0 {
							b.Fatalf("pod %s: discovered %v, listeners %v (%s), want 3 discovered", r.UID, r.Discovered, r.Listeners, r.Unchecked)
						}
					} else if len(r.Listeners) != 2 {
						b.Fatalf("pod %s: %d listeners (%s), want 2", r.UID, len(r.Listeners), r.Unchecked)
					}
				}
			}
		})
	}
}

// BenchmarkLocate finds the 100 pods' processes both ways: walking the
// cgroup tree, or reading /proc/<pid>/cgroup of every process.
func BenchmarkLocate(b *testing.B) {
	targets := benchPods(b, 100, false)
	for _, locate := range []struct{ name, cgroupRoot string }{{"cgroup-tree", "/sys/fs/cgroup"}, {"proc-cgroup", ""}} {
		b.Run("pods=100/"+locate.name, func(b *testing.B) {
			s := &Scanner{ProcRoot: "/proc", CgroupRoot: locate.cgroupRoot}
			b.ReportAllocs()
			for b.Loop() {
				pods, err := s.Pods()
				if err != nil {
					b.Fatal(err)
				}
				if len(pods[targets[0].UID]) != 1 {
					b.Fatalf("pod %s: %v", targets[0].UID, pods[targets[0].UID])
				}
			}
		})
	}
}
