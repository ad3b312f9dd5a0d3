package bindscan

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCapabilities finds which capabilities a scanner running as root in a
// container (capabilities dropped, as the agent's DaemonSet does) needs,
// by scanning a pod whose process runs as another user (65532, like most
// images) under a bounding set of exactly those capabilities:
//
//   - none: the sockets are found (/proc/<pid>/cgroup and
//     /proc/<pid>/net/* are world-readable) but not their process: the
//     fd directory is mode 0500 and owned by the process's user;
//   - CAP_DAC_READ_SEARCH alone: the fd directory lists, but its links do
//     not resolve (readlink needs ptrace read access);
//   - CAP_SYS_PTRACE alone: ptrace access, but still no listing of the
//     fd directory;
//   - both: sockets and their processes.
func TestCapabilities(t *testing.T) {
	l := layouts[0]
	root := testRoot(t, l)
	c := startChildAs(t, []string{"tcp4://0.0.0.0:15000"}, 65532)
	uid, cid := newUID(t), newContainerID(t)
	placeInCgroup(t, filepath.Join(root, l.podDir(uid), cid), c.PID)
	tests := []struct {
		caps      string
		wantOwner bool
	}{
		{"", false},
		{"dac_read_search", false},
		{"sys_ptrace", false},
		{"sys_ptrace,dac_read_search", true},
	}
	for _, tt := range tests {
		name := tt.caps
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			r := scanUnderCaps(t, tt.caps, uid)
			if r.Unchecked != "" || len(r.Listeners) != 1 || r.Listeners[0].Socket.String() != "TCP 0.0.0.0:15000" {
				t.Fatalf("result = %+v, want the listener on 0.0.0.0:15000", r)
			}
			gotOwner := r.Listeners[0].PID == c.PID && r.Listeners[0].ContainerID == cid
			if gotOwner != tt.wantOwner {
				t.Errorf("owner found = %v (%+v), want %v", gotOwner, r.Listeners[0], tt.wantOwner)
			}
		})
	}
}

// scanUnderCaps runs a scan of one pod in a child whose bounding set (so
// also its permitted and effective sets, as root) is exactly caps.
func scanUnderCaps(t *testing.T, caps, uid string) Result {
	t.Helper()
	bounding := "-all"
	for _, c := range strings.Split(caps, ",") {
		if c != "" {
			bounding += ",+" + c
		}
	}
	cmd := exec.Command("setpriv", "--bounding-set="+bounding, "--inh-caps=-all", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=scan", envScanUID+"="+uid)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scan under capabilities %q: %v (setpriv from util-linux needed)", caps, err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("scan output %q: %v", out, err)
	}
	return r
}

const envScanUID = "BINDSCAN_TEST_SCAN_UID"

// runScan is the "scan" child: one pod, 15000-15010/TCP, as JSON.
func runScan() {
	s := &Scanner{ProcRoot: "/proc", CgroupRoot: "/sys/fs/cgroup"}
	res, err := s.Scan([]Target{{UID: os.Getenv(envScanUID), Ranges: []PortRange{{Protocol: TCP, From: 15000, To: 15010}}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res[0])
}

// startChildAs starts a listener in a new network namespace as user uid
// (the namespace is created as root, then the child drops to uid).
func startChildAs(t *testing.T, listen []string, uid uint32) child {
	// The go tool's build directory is root's alone: run a copy.
	dir, err := os.MkdirTemp("", "bindscan-exe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	exe := filepath.Join(dir, "bindscan.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return startChildWith(t, listen, func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args[0] = exe, exe
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	})
}
