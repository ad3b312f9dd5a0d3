package bindscan

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The kernel tests re-execute the test binary as a child that listens in
// a network namespace of its own (CLONE_NEWNET): real sockets, real
// /proc/<pid>/net tables, real cgroups. They need root.

const (
	envChild  = "BINDSCAN_TEST_CHILD"  // "listener" or "idle"
	envListen = "BINDSCAN_TEST_LISTEN" // comma-separated proto://addr:port
	envSetup  = "BINDSCAN_TEST_SETUP"  // "1": lo up and a veth with 10.250.0.1/24
	envPeer   = "BINDSCAN_TEST_PEER"   // "1": start an idle second process in the namespace
	// envOwnEhash "1": move into a further namespace created with its own
	// TCP established table (net.ipv4.tcp_child_ehash_entries), as pods
	// get on a node with that sysctl set.
	envOwnEhash = "BINDSCAN_TEST_OWN_EHASH"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "listener":
		runListener()
		return
	case "idle":
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	case "scan":
		runScan()
		return
	}
	os.Exit(m.Run())
}

// runListener sets up its namespace, listens, prints "ready <pid> <peer>"
// and holds its sockets until stdin closes.
func runListener() {
	fail := func(err error) {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	if os.Getenv(envOwnEhash) == "1" {
		// The sysctl applies to namespaces created from this one: set it
		// here (a namespace of the test's own), unshare into a new one
		// and re-execute, so the whole process lives there.
		if err := os.WriteFile("/proc/sys/net/ipv4/tcp_child_ehash_entries", []byte("1024"), 0o644); err != nil {
			fail(fmt.Errorf("set tcp_child_ehash_entries: %w", err))
		}
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			fail(fmt.Errorf("unshare: %w", err))
		}
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, envOwnEhash+"=") {
				env = append(env, kv)
			}
		}
		fail(syscall.Exec("/proc/self/exe", os.Args, env))
	}
	if os.Getenv(envSetup) == "1" {
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			// A veth pair (this kernel has no dummy driver); its far end
			// stays in the same namespace, so nothing leaves it.
			{"link", "add", "lgtest0", "type", "veth", "peer", "name", "lgtest1"},
			{"addr", "add", "10.250.0.1/24", "dev", "lgtest0"},
			{"addr", "add", "fd00:250::1/64", "dev", "lgtest0", "nodad"},
			{"link", "set", "lgtest1", "up"},
			{"link", "set", "lgtest0", "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				fail(fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out))
			}
		}
	}
	var keep []io.Closer
	for _, spec := range strings.Split(os.Getenv(envListen), ",") {
		if spec == "" {
			continue
		}
		proto, addr, _ := strings.Cut(spec, "://")
		var c io.Closer
		var err error
		switch proto {
		case "tcp", "tcp4", "tcp6":
			c, err = net.Listen(proto, addr)
		case "udp", "udp4", "udp6":
			c, err = net.ListenPacket(proto, addr)
		case "mapped6": // an AF_INET6 socket bound to a v4-mapped address, which Go's net refuses
			c, err = listenMapped(addr)
		case "connect": // a TCP connection, held open
			c, err = net.Dial("tcp", addr)
		case "udpconn": // local>remote: a connected UDP socket
			local, remote, _ := strings.Cut(addr, ">")
			la, _ := net.ResolveUDPAddr("udp", local)
			ra, _ := net.ResolveUDPAddr("udp", remote)
			c, err = net.DialUDP("udp", la, ra)
		default:
			err = fmt.Errorf("unknown protocol %q", proto)
		}
		if err != nil {
			fail(fmt.Errorf("listen %s: %w", spec, err))
		}
		keep = append(keep, c)
	}
	peer := 0
	if os.Getenv(envPeer) == "1" {
		cmd := exec.Command("/proc/self/exe", "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"=idle")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			fail(err)
		}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
		peer = cmd.Process.Pid
	}
	fmt.Printf("ready %d %d\n", os.Getpid(), peer)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range keep {
		_ = c.Close()
	}
}

// child is a running listener: PID listens, Peer (when asked for) is a
// second process in the same network namespace.
type child struct {
	PID, Peer int
}

// startChild starts a listener in a new network namespace, or in the
// namespace of joinPID when it is not 0, and stops it at cleanup.
func startChild(t testing.TB, listen []string, setup, peer bool, joinPID int) child {
	t.Helper()
	return startChildWith(t, listen, func(cmd *exec.Cmd) {
		if setup {
			cmd.Env = append(cmd.Env, envSetup+"=1")
		}
		if peer {
			cmd.Env = append(cmd.Env, envPeer+"=1")
		}
		if joinPID != 0 {
			// nsenter is the simplest way into an existing namespace from
			// a test; the scanner itself never executes anything.
			cmd.Args = append([]string{"nsenter", "--net=/proc/" + fmt.Sprint(joinPID) + "/ns/net"}, cmd.Args...)
			cmd.Path, _ = exec.LookPath("nsenter")
			return
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	})
}

// startChildWith starts a listener child that configure adjusts.
func startChildWith(t testing.TB, listen []string, configure func(*exec.Cmd)) child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=listener", envListen+"="+strings.Join(listen, ","))
	configure(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start a listener in a new network namespace (root needed): %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("listener child: %v", err)
	}
	var c child
	if _, err := fmt.Sscanf(line, "ready %d %d", &c.PID, &c.Peer); err != nil {
		t.Fatalf("listener child: %q", line)
	}
	return c
}

// newUID returns a random pod UID.
func newUID(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newContainerID returns a random 64-hex container ID.
func newContainerID(t testing.TB) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// layout builds a pod's cgroup path below a test root.
type layout struct {
	name string
	// hierarchy is the mounted hierarchy the test creates cgroups in.
	hierarchy string
	podDir    func(uid string) string
	container func(id string) string
}

var layouts = []layout{
	{
		name:      "cgroupv1-cgroupfs",
		hierarchy: "/sys/fs/cgroup/pids",
		podDir:    func(uid string) string { return filepath.Join("kubepods", "besteffort", "pod"+uid) },
		container: func(id string) string { return id },
	},
	{
		name:      "cgroupv2-systemd",
		hierarchy: "/sys/fs/cgroup/unified",
		podDir: func(uid string) string {
			u := strings.ReplaceAll(uid, "-", "_")
			return filepath.Join("kubepods.slice", "kubepods-burstable.slice", "kubepods-burstable-pod"+u+".slice")
		},
		container: func(id string) string { return "cri-containerd-" + id + ".scope" },
	},
}

// testRoot creates a cgroup below which the test builds its kubepods
// tree; it is not the kubelet's kubepods, which a running dev node would
// clean of pods it does not know.
func testRoot(t testing.TB, l layout) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(l.hierarchy, "cgroup.procs")); err != nil {
		t.Fatalf("cgroup hierarchy %s: %v (the kernel tests need this machine's cgroup layout and root)", l.hierarchy, err)
	}
	root := filepath.Join(l.hierarchy, "loopguard-bindscan-test-"+newUID(t)[:8])
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatalf("failed to create cgroup %s (root needed): %v", root, err)
	}
	t.Cleanup(func() { removeCgroupTree(t, root) })
	return root
}

// placeInCgroup creates dir (and its parents) and moves pid into it.
func placeInCgroup(t testing.TB, dir string, pid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("failed to create cgroup %s: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(pid)), 0o644); err != nil {
		t.Fatalf("failed to move %d into %s: %v", pid, dir, err)
	}
}

// removeCgroupTree removes a cgroup and its descendants, deepest first,
// retrying while exiting processes still hold them.
func removeCgroupTree(t testing.TB, root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		var err error
		for range 100 {
			if err = syscall.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("failed to remove cgroup %s: %v", dirs[i], err)
		}
	}
}

func osMkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

// listenMapped listens on an AF_INET6 TCP socket bound to a v4-mapped
// address ("[::ffff:127.0.0.1]:15006").
func listenMapped(addr string) (io.Closer, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "mapped6")
	if err := syscall.Bind(fd, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := syscall.Listen(fd, 16); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}
