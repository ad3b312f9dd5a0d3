package bindscan

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Scanner reads socket tables and process information under ProcRoot and,
// optionally, the cgroup tree under CgroupRoot. It reuses a read buffer, so
// one Scanner serves one goroutine.
type Scanner struct {
	// ProcRoot is the host's procfs ("/proc", or where a container mounts
	// the host's /proc with hostPID).
	ProcRoot string
	// CgroupRoot is the host's cgroup tree ("/sys/fs/cgroup"); empty: find
	// pods through <ProcRoot>/<pid>/cgroup instead.
	CgroupRoot string

	buf []byte
}

func (s *Scanner) procRoot() string {
	if s.ProcRoot == "" {
		return "/proc"
	}
	return s.ProcRoot
}

// PortRange is a protected range From..To (inclusive) of one protocol.
type PortRange struct {
	Protocol Protocol
	From, To uint16
}

// Target is a pod to check and the port ranges its policies protect.
type Target struct {
	UID string
	// HostNetwork pods share the node's network namespace: only sockets
	// that the pod's own processes hold are the pod's.
	HostNetwork bool
	Ranges      []PortRange
	// Discover asks for every other listening socket of the pod too (on
	// loopback as well, outside Ranges), in Result.Discovered.
	Discover bool
	// Clients asks for the client ends of the established connections to
	// the TCP ports of Ranges on loopback, in Result.Clients.
	Clients bool
}

// Listener is a socket in a protected range beyond loopback, with its
// owning process when one of the pod's processes holds it.
type Listener struct {
	Socket
	PID         int
	Process     string
	ContainerID string
}

// Result is the outcome of checking one target.
type Result struct {
	UID       string
	Listeners []Listener
	// Discovered are, when the target asked for discovery, the pod's
	// listening sockets outside its ranges, loopback ones included.
	Discovered []Listener
	// Clients are, when the target asked for them, the connections to its
	// protected TCP ports on loopback and who holds their client end.
	Clients []Client
	// Unchecked says why the pod could not be checked; empty when checked.
	Unchecked string
}

// Scan checks the targets: it finds the node's pods once, reads each
// network namespace once (pods in the node's namespace share one read) and
// maps socket inodes to processes only for pods with findings, searching
// the pod's processes alone. An error means nothing could be checked.
func (s *Scanner) Scan(targets []Target) ([]Result, error) {
	pods, err := s.Pods()
	if err != nil {
		return nil, err
	}
	tables := map[string]*nsTables{}
	results := make([]Result, 0, len(targets))
	for _, t := range targets {
		results = append(results, s.scanPod(t, pods[t.UID], tables))
	}
	return results, nil
}

func (s *Scanner) scanPod(t Target, procs []Process, tables map[string]*nsTables) Result {
	r := Result{UID: t.UID}
	if len(procs) == 0 {
		r.Unchecked = "no process in the pod's cgroups (not started yet, or exited)"
		return r
	}
	tb, err := s.netnsSockets(t.UID, procs, tables)
	if err != nil {
		r.Unchecked = err.Error()
		return r
	}
	sockets := tb.sockets
	if t.Clients && !t.HostNetwork {
		r.Clients = s.clients(procs, tb.conns, t.Ranges)
	}
	var hits, found []Socket
	for _, so := range sockets {
		switch {
		case inRanges(so, t.Ranges):
			if so.BeyondLoopback() {
				hits = append(hits, so)
			}
		case t.Discover:
			found = append(found, so)
		}
	}
	if len(hits) == 0 && len(found) == 0 {
		return r
	}
	owners := s.owners(procs, append(slices.Clip(hits), found...))
	r.Listeners = attribute(hits, owners, t.HostNetwork)
	r.Discovered = attribute(found, owners, t.HostNetwork)
	return r
}

// attribute gives sockets their owners, sorted by protocol, port, address
// and PID; in a hostNetwork pod a socket no process of the pod holds is
// another pod's or the node's, and left out.
func attribute(sockets []Socket, owners map[uint64]owner, hostNetwork bool) []Listener {
	var out []Listener
	for _, so := range sockets {
		l := Listener{Socket: so}
		if o, ok := owners[so.Inode]; ok {
			l.PID, l.Process, l.ContainerID = o.PID, o.Process, o.ContainerID
		} else if hostNetwork {
			continue // another pod's or the node's socket
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port), a.Addr.Compare(b.Addr), cmp.Compare(a.PID, b.PID))
	})
	return out
}

func inRanges(so Socket, ranges []PortRange) bool {
	for _, r := range ranges {
		if r.Protocol == so.Protocol && so.Port >= r.From && so.Port <= r.To {
			return true
		}
	}
	return false
}

// netnsSockets reads the socket tables of the pod's network namespace
// through the first of its processes that still runs; tables caches them
// by namespace for the rest of the scan. A process that exited and whose
// PID was reused since the pods were found would show another namespace:
// the process's cgroup is checked again after the read.
func (s *Scanner) netnsSockets(uid string, procs []Process, tables map[string]*nsTables) (*nsTables, error) {
	var lastErr error
	for _, p := range procs {
		pidDir := filepath.Join(s.procRoot(), strconv.Itoa(p.PID))
		ns, err := os.Readlink(filepath.Join(pidDir, "ns", "net"))
		if err == nil {
			if cached, ok := tables[ns]; ok && s.stillInPod(pidDir, uid) {
				return cached, nil
			}
		}
		tb, err := s.readTables(filepath.Join(pidDir, "net"))
		if err != nil {
			lastErr = err
			continue
		}
		if !s.stillInPod(pidDir, uid) {
			lastErr = fmt.Errorf("process %d left the pod during the scan", p.PID)
			continue
		}
		if ns != "" {
			tables[ns] = tb
		}
		return tb, nil
	}
	return nil, fmt.Errorf("failed to read the network namespace of any of the pod's %d processes: %w", len(procs), lastErr)
}

// stillInPod reports whether the process of pidDir is in the pod's cgroup.
func (s *Scanner) stillInPod(pidDir, uid string) bool {
	data, err := s.read(filepath.Join(pidDir, "cgroup"))
	if err != nil {
		return false
	}
	pc, ok := parseProcCgroup(data)
	return ok && pc.PodUID == uid
}

// nsTables are what a namespace's tables hold: listening and bound
// sockets, and established TCP connections.
type nsTables struct {
	sockets []Socket
	conns   []Conn
}

// socketTables are the per-namespace tables of <proc>/<pid>/net.
var socketTables = []struct {
	file  string
	proto Protocol
}{{"tcp", TCP}, {"tcp6", TCP}, {"udp", UDP}, {"udp6", UDP}}

// readTables reads the namespace's TCP and UDP tables (tcp6 and udp6 are
// missing when IPv6 is disabled) and SCTP's endpoints when the module is
// loaded.
func (s *Scanner) readTables(netDir string) (*nsTables, error) {
	var out []Socket
	var conns []Conn
	for _, tb := range socketTables {
		data, err := s.read(filepath.Join(netDir, tb.file))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(tb.file, "6") {
				continue
			}
			return nil, fmt.Errorf("failed to read %s: %w", filepath.Join(netDir, tb.file), err)
		}
		if out, err = parseTable(data, tb.proto, out); err != nil {
			return nil, err
		}
		if tb.proto == TCP {
			if conns, err = parseConns(data, conns); err != nil {
				return nil, err
			}
		}
	}
	data, err := s.read(filepath.Join(netDir, "sctp", "eps"))
	switch {
	case err == nil:
		if out, err = parseSCTPEndpoints(data, out); err != nil {
			return nil, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("failed to read %s: %w", filepath.Join(netDir, "sctp", "eps"), err)
	}
	return &nsTables{sockets: out, conns: conns}, nil
}

// owner is the process that holds a socket.
type owner struct {
	PID         int
	Process     string
	ContainerID string
}

// owners maps the inodes of sockets to the pod's processes that hold them
// (through the <proc>/<pid>/fd links "socket:[inode]"). A socket shared by
// several processes (a pre-forking server) is attributed to the lowest PID.
func (s *Scanner) owners(procs []Process, sockets []Socket) map[uint64]owner {
	want := make(map[uint64]bool, len(sockets))
	for _, so := range sockets {
		want[so.Inode] = true
	}
	out := map[uint64]owner{}
	sorted := slices.SortedFunc(slices.Values(procs), func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	for _, p := range sorted {
		fdDir := filepath.Join(s.procRoot(), strconv.Itoa(p.PID), "fd")
		fds, err := readDirNames(fdDir)
		if err != nil {
			continue // exited, or no permission (see the agent's capabilities)
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd))
			if err != nil {
				continue
			}
			inode, ok := socketInode(link)
			if !ok || !want[inode] {
				continue
			}
			if _, taken := out[inode]; taken {
				continue
			}
			out[inode] = owner{PID: p.PID, Process: s.comm(p.PID), ContainerID: p.ContainerID}
		}
	}
	return out
}

// socketInode parses "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	rest, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// comm is the process's command name, empty when it is gone.
func (s *Scanner) comm(pid int) string {
	data, err := s.read(filepath.Join(s.procRoot(), strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
