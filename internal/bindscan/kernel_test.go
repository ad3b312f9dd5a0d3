package bindscan

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScanRealNamespaces: a pod of two processes (a sandbox and an app, in
// two container cgroups) in its own network namespace, laid out as each
// cgroup driver and version lays it out; the scanner, finding the pod
// through the cgroup tree and through /proc/<pid>/cgroup, reports exactly
// the sockets beyond loopback in the protected ranges, owned by the app.
func TestScanRealNamespaces(t *testing.T) {
	listen := []string{
		"tcp4://0.0.0.0:15000",                    // wildcard: reported
		"tcp6://[::]:15001",                       // wildcard v6: reported
		"tcp6://[::1]:15002",                      // loopback v6: not
		"tcp4://127.0.0.1:15003",                  // loopback: not
		"tcp4://127.0.0.2:15004",                  // 127/8: not
		"tcp4://10.250.0.1:15005",                 // an interface address (the pod IP's place): reported
		"mapped6://[::ffff:127.0.0.1]:15006",      // v4-mapped loopback: not
		"mapped6://[::ffff:10.250.0.1]:15007",     // v4-mapped interface address: reported
		"tcp6://[fd00:250::1]:15008",              // a v6 interface address: reported
		"tcp4://0.0.0.0:9999",                     // outside the protected ranges: not
		"udp4://0.0.0.0:15010",                    // bound UDP: reported
		"udp4://127.0.0.1:15011",                  // loopback UDP: not
		"udp6://[::]:15012",                       // bound UDP v6: reported
		"udpconn://10.250.0.1:15013>10.250.0.2:9", // connected UDP: not
		"tcp4://0.0.0.0:15020",                    // TCP listener, only UDP protected here: not
	}
	want := []string{
		"TCP 0.0.0.0:15000", "TCP [::]:15001", "TCP 10.250.0.1:15005",
		"TCP [::ffff:10.250.0.1]:15007", "TCP [fd00:250::1]:15008",
		"UDP 0.0.0.0:15010", "UDP [::]:15012",
	}
	ranges := []PortRange{{Protocol: TCP, From: 15000, To: 15010}, {Protocol: UDP, From: 15000, To: 15020}}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			root := testRoot(t, l)
			c := startChild(t, listen, true, true, 0)
			uid := newUID(t)
			sandboxID, appID := newContainerID(t), newContainerID(t)
			podDir := filepath.Join(root, l.podDir(uid))
			placeInCgroup(t, filepath.Join(podDir, l.container(sandboxID)), c.Peer)
			placeInCgroup(t, filepath.Join(podDir, l.container(appID)), c.PID)

			for _, locate := range []struct {
				name       string
				cgroupRoot string
			}{{"cgroup-tree", "/sys/fs/cgroup"}, {"proc-cgroup", ""}} {
				t.Run(locate.name, func(t *testing.T) {
					s := &Scanner{ProcRoot: "/proc", CgroupRoot: locate.cgroupRoot}
					pods, err := s.Pods()
					if err != nil {
						t.Fatal(err)
					}
					procs := pods[uid]
					gotProcs := map[int]string{}
					for _, p := range procs {
						gotProcs[p.PID] = p.ContainerID
					}
					if len(gotProcs) != 2 || gotProcs[c.PID] != appID || gotProcs[c.Peer] != sandboxID {
						t.Fatalf("processes of pod %s = %v, want %d in %s and %d in %s", uid, procs, c.PID, appID, c.Peer, sandboxID)
					}
					results, err := s.Scan([]Target{{UID: uid, Ranges: ranges}})
					if err != nil {
						t.Fatal(err)
					}
					r := results[0]
					if r.Unchecked != "" {
						t.Fatalf("pod unchecked: %s", r.Unchecked)
					}
					var got []string
					for _, li := range r.Listeners {
						got = append(got, li.Socket.String())
						if li.PID != c.PID || li.ContainerID != appID || li.Process == "" {
							t.Errorf("%s owned by pid %d (%q) in %q, want pid %d in %s", li.Socket, li.PID, li.Process, li.ContainerID, c.PID, appID)
						}
					}
					slices.Sort(got)
					w := slices.Clone(want)
					slices.Sort(w)
					if !slices.Equal(got, w) {
						t.Errorf("listeners beyond loopback:\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(w, ", "))
					}
					if len(r.Discovered) != 0 {
						t.Errorf("discovered %v without discovery", r.Discovered)
					}

					// Discovery: the same findings, and every listening
					// socket outside the ranges, whatever its address.
					results, err = s.Scan([]Target{{UID: uid, Ranges: ranges, Discover: true}})
					if err != nil {
						t.Fatal(err)
					}
					var found []string
					for _, li := range results[0].Discovered {
						found = append(found, li.Socket.String())
						if li.PID != c.PID || li.ContainerID != appID || li.Process == "" {
							t.Errorf("discovered %s owned by pid %d (%q) in %q, want pid %d in %s", li.Socket, li.PID, li.Process, li.ContainerID, c.PID, appID)
						}
					}
					if wantFound := []string{"TCP 0.0.0.0:9999", "TCP 0.0.0.0:15020"}; !slices.Equal(found, wantFound) {
						t.Errorf("discovered %v, want %v", found, wantFound)
					}
					if len(results[0].Listeners) != len(want) {
						t.Errorf("with discovery: %d listeners beyond loopback, want %d", len(results[0].Listeners), len(want))
					}
				})
			}
		})
	}
}

// TestScanSharedNamespace: a hostNetwork pod shares its namespace (here a
// stand-in for the node's, created by the test so the host's ports stay
// untouched) with other processes; only the sockets of its own processes
// are reported, and a pod without processes is unchecked, not clean.
func TestScanSharedNamespace(t *testing.T) {
	l := layouts[0]
	root := testRoot(t, l)
	other := startChild(t, []string{"tcp4://0.0.0.0:15000"}, false, false, 0)
	hostPod := startChild(t, []string{"tcp4://0.0.0.0:15001", "udp6://[::]:15002"}, false, false, other.PID)
	uid, otherUID, emptyUID := newUID(t), newUID(t), newUID(t)
	placeInCgroup(t, filepath.Join(root, l.podDir(uid), newContainerID(t)), hostPod.PID)
	placeInCgroup(t, filepath.Join(root, l.podDir(otherUID), newContainerID(t)), other.PID)
	if err := mkdirCgroup(filepath.Join(root, l.podDir(emptyUID))); err != nil {
		t.Fatal(err)
	}
	ranges := []PortRange{{Protocol: TCP, From: 15000, To: 15010}, {Protocol: UDP, From: 15000, To: 15010}}
	s := &Scanner{ProcRoot: "/proc", CgroupRoot: "/sys/fs/cgroup"}
	results, err := s.Scan([]Target{
		{UID: uid, HostNetwork: true, Ranges: ranges},
		{UID: emptyUID, Ranges: ranges},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, li := range results[0].Listeners {
		got = append(got, li.Socket.String())
		if li.PID != hostPod.PID {
			t.Errorf("%s owned by %d, want %d", li.Socket, li.PID, hostPod.PID)
		}
	}
	if want := []string{"TCP 0.0.0.0:15001", "UDP [::]:15002"}; !slices.Equal(got, want) {
		t.Errorf("hostNetwork pod's listeners = %v, want %v (not the other process's 15000)", got, want)
	}
	if results[1].Unchecked == "" || len(results[1].Listeners) != 0 {
		t.Errorf("pod without processes = %+v, want unchecked", results[1])
	}
}

func mkdirCgroup(dir string) error {
	return osMkdirAll(dir)
}
