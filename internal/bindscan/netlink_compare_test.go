package bindscan

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// The agent reads each pod's listening sockets from /proc/<pid>/net/tcp
// and tcp6, whose every read walks the kernel's whole TCP established
// table (shared by all namespaces unless tcp_child_ehash_entries is set).
// Netlink socket diagnostics (NETLINK_SOCK_DIAG) can ask for listening
// sockets alone, which skips that table, but a netlink socket answers for
// the network namespace it was created in: reading another pod's needs
// setns(2), i.e. CAP_SYS_ADMIN, which the agent does not have. This file
// measures both (BenchmarkListenersProcVsNetlink, docs/benchmarks.md) and
// checks that they agree (TestNetlinkAgreesWithProc); the agent stays on
// /proc (docs/design.md).

const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	tcpfListen       = 1 << 10
	nlmsgDone        = 3
	nlmsgError       = 2
)

// netlinkListeners returns the local ports of the TCP sockets listening
// in the network namespace of pid, both families, through sock_diag
// (LISTEN only) from a thread moved into that namespace.
func netlinkListeners(pid int) ([]int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns (CAP_SYS_ADMIN): %w", err)
	}
	fd, sockErr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		panic(fmt.Sprintf("cannot return to the test's network namespace: %v", err)) // the thread is unusable
	}
	if sockErr != nil {
		return nil, sockErr
	}
	defer unix.Close(fd)
	var ports []int
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		p, err := sockDiagDump(fd, family)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p...)
	}
	slices.Sort(ports)
	return ports, nil
}

// sockDiagDump sends one inet_diag_req_v2 dump request (TCP, LISTEN) and
// returns the local ports of the answers.
func sockDiagDump(fd int, family uint8) ([]int, error) {
	req := make([]byte, 16+56)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	req[16], req[17] = family, unix.IPPROTO_TCP
	ne.PutUint32(req[20:], tcpfListen)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var ports []int
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, err
		}
		for b := buf[:n]; len(b) >= 16; {
			l, typ := int(ne.Uint32(b[0:])), ne.Uint16(b[4:])
			if l < 16 || l > len(b) {
				return nil, fmt.Errorf("malformed netlink message")
			}
			switch typ {
			case nlmsgDone:
				return ports, nil
			case nlmsgError:
				return nil, fmt.Errorf("sock_diag error %d", int32(ne.Uint32(b[16:])))
			case sockDiagByFamily:
				// inet_diag_msg: family, state, timer, retrans, then
				// inet_diag_sockid whose source port is big-endian.
				if l >= 16+8 {
					ports = append(ports, int(binary.BigEndian.Uint16(b[16+4:])))
				}
			}
			b = b[(l+3)&^3:]
		}
	}
}

// procListeners returns the local ports of the TCP sockets listening in
// the network namespace of pid, read as the agent reads them.
func procListeners(pid int) ([]int, error) {
	var ports []int
	for _, f := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return nil, err
		}
		socks, err := parseTable(data, TCP, nil)
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			ports = append(ports, int(s.Port))
		}
	}
	slices.Sort(ports)
	return ports, nil
}

// TestNetlinkAgreesWithProc: both sources list the same listening ports
// of a namespace, so the benchmark compares like with like.
func TestNetlinkAgreesWithProc(t *testing.T) {
	c := startChild(t, []string{"tcp4://0.0.0.0:15000", "tcp4://127.0.0.1:15001", "tcp6://[::1]:15003", "udp4://0.0.0.0:15002"}, true, false, 0)
	fromProc, err := procListeners(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	fromNetlink, err := netlinkListeners(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{15000, 15001, 15003}; !slices.Equal(fromProc, want) || !slices.Equal(fromNetlink, want) {
		t.Fatalf("listening TCP ports: /proc %v, netlink %v, want %v", fromProc, fromNetlink, want)
	}
}

// BenchmarkListenersProcVsNetlink reads the listening TCP sockets of 100
// pods (benchPods, each in its own network namespace) through /proc, as
// the agent does, and through sock_diag (LISTEN only, after setns), with
// the TCP established table shared by all namespaces (the default) and
// with one per namespace (tcp_child_ehash_entries).
func BenchmarkListenersProcVsNetlink(b *testing.B) {
	for _, ehash := range []struct {
		name string
		own  bool
	}{{"ehash=global", false}, {"ehash=per-netns", true}} {
		targets := benchPods(b, 100, ehash.own)
		s := &Scanner{ProcRoot: "/proc"}
		pods, err := s.Pods()
		if err != nil {
			b.Fatal(err)
		}
		var pids []int
		for _, t := range targets {
			pids = append(pids, pods[t.UID][0].PID)
		}
		for _, v := range []struct {
			name string
			read func(int) ([]int, error)
		}{{"proc", procListeners}, {"netlink-listen", netlinkListeners}} {
			b.Run("pods=100/"+ehash.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for _, pid := range pids {
						ports, err := v.read(pid)
						if err != nil {
							b.Fatal(err)
						}
						if len(ports) != 2 {
							b.Fatalf("pid %d: listening TCP ports %v, want 15000 and 15001", pid, ports)
						}
					}
				}
			})
		}
	}
}
