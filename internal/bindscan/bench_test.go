package bindscan

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkScan scans a node of 100 pods: 100 processes, each in its own
// network namespace and cgroupfs pod cgroup, each listening on TCP
// 0.0.0.0:15000 (a finding), TCP 127.0.0.1:15001 and UDP 0.0.0.0:15002
// (a finding), every pod protected on 15000-15002 TCP and UDP. One op is
// one Scan: locate the pods, read 100 namespaces' four tables and map the
// findings' inodes to processes, beside everything else the machine runs.
func BenchmarkScan(b *testing.B) {
	const pods = 100
	l := layouts[0]
	root := testRoot(b, l)
	targets := make([]Target, 0, pods)
	ranges := []PortRange{{Protocol: TCP, From: 15000, To: 15002}, {Protocol: UDP, From: 15000, To: 15002}}
	for range pods {
		c := startChild(b, []string{"tcp4://0.0.0.0:15000", "tcp4://127.0.0.1:15001", "udp4://0.0.0.0:15002"}, false, false, 0)
		uid := newUID(b)
		placeInCgroup(b, filepath.Join(root, l.podDir(uid), newContainerID(b)), c.PID)
		targets = append(targets, Target{UID: uid, Ranges: ranges})
	}
	for _, locate := range []struct{ name, cgroupRoot string }{{"cgroup-tree", "/sys/fs/cgroup"}, {"proc-cgroup", ""}} {
		b.Run(fmt.Sprintf("pods=%d/locate=%s", pods, locate.name), func(b *testing.B) {
			s := &Scanner{ProcRoot: "/proc", CgroupRoot: locate.cgroupRoot}
			b.ReportAllocs()
			for b.Loop() {
				results, err := s.Scan(targets)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range results {
					if len(r.Listeners) != 2 {
						b.Fatalf("pod %s: %d listeners (%s), want 2", r.UID, len(r.Listeners), r.Unchecked)
					}
				}
			}
		})
	}
}
