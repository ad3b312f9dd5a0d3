package bindscan

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Conn is one established TCP connection of a network namespace, as one
// of its two sockets sees it.
type Conn struct {
	Local, Remote netip.AddrPort
	Inode         uint64
}

// Client is the client end of an established connection to a protected
// TCP port on loopback, and who holds it: a process of the pod (PID,
// Process, ContainerID), or, with Outside, a process that is in none of
// the pod's containers (a kubectl port-forward's CRI streaming server, an
// nsenter from the node), whose PID and Process are filled when found.
type Client struct {
	// Port is the protected port the client is connected to.
	Port        uint16
	Server      netip.AddrPort
	PID         int
	Process     string
	ContainerID string
	Outside     bool
}

// parseConns appends the ESTABLISHED sockets of a /proc/net/tcp{,6} table.
func parseConns(data []byte, out []Conn) ([]Conn, error) {
	lines := bytes.Split(data, []byte{'\n'})
	for _, line := range lines[min(1, len(lines)):] {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return out, fmt.Errorf("failed to parse socket line %q: %d fields, want at least 10", line, len(f))
		}
		state, err := strconv.ParseUint(string(f[3]), 16, 8)
		if err != nil {
			return out, fmt.Errorf("failed to parse state in %q: %w", line, err)
		}
		if state != stateEstablished {
			continue
		}
		la, lp, err := parseAddrPort(f[1])
		if err != nil {
			return out, fmt.Errorf("failed to parse local address in %q: %w", line, err)
		}
		ra, rp, err := parseAddrPort(f[2])
		if err != nil {
			return out, fmt.Errorf("failed to parse remote address in %q: %w", line, err)
		}
		inode, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil {
			return out, fmt.Errorf("failed to parse inode in %q: %w", line, err)
		}
		out = append(out, Conn{Local: netip.AddrPortFrom(la, lp), Remote: netip.AddrPortFrom(ra, rp), Inode: inode})
	}
	return out, nil
}

// clientEnds pairs each connection accepted on a protected TCP port on
// loopback with its client socket (the connection seen from the other
// end, in the same namespace: loopback never leaves it).
func clientEnds(conns []Conn, ranges []PortRange) map[uint64]Client {
	byEnds := make(map[[2]netip.AddrPort]Conn, len(conns))
	for _, c := range conns {
		byEnds[[2]netip.AddrPort{c.Local, c.Remote}] = c
	}
	out := map[uint64]Client{}
	for _, c := range conns {
		if !c.Local.Addr().Unmap().IsLoopback() || !inRanges(Socket{Protocol: TCP, Port: c.Local.Port()}, ranges) {
			continue
		}
		peer, ok := byEnds[[2]netip.AddrPort{c.Remote, c.Local}]
		if !ok || peer.Inode == 0 {
			continue // closing, or a client socket already gone
		}
		// A client on a port in the range connected to another port in
		// it: the lower end is the client's only if it is not the server.
		out[peer.Inode] = Client{Port: c.Local.Port(), Server: c.Local}
	}
	return out
}

// clients attributes the client ends to the pod's processes, and the rest
// to any process of the node (Outside).
func (s *Scanner) clients(procs []Process, conns []Conn, ranges []PortRange) []Client {
	ends := clientEnds(conns, ranges)
	if len(ends) == 0 {
		return nil
	}
	var socks []Socket
	for inode := range ends {
		socks = append(socks, Socket{Inode: inode})
	}
	owners := s.owners(procs, socks)
	var rest []uint64
	var out []Client
	for inode, c := range ends {
		if o, ok := owners[inode]; ok {
			c.PID, c.Process, c.ContainerID = o.PID, o.Process, o.ContainerID
			out = append(out, c)
			continue
		}
		rest = append(rest, inode)
	}
	if len(rest) > 0 {
		outside := s.ownersAnywhere(rest, procs)
		for _, inode := range rest {
			c := ends[inode]
			c.Outside = true
			if o, ok := outside[inode]; ok {
				c.PID, c.Process = o.PID, o.Process
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Client) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.ContainerID, b.ContainerID), cmp.Compare(a.Process, b.Process), cmp.Compare(a.PID, b.PID))
	})
	return out
}

// ownersAnywhere finds the processes of the node, outside the pod, that
// hold the sockets: every process's fd directory is read, so it runs only
// when a client end is not the pod's.
func (s *Scanner) ownersAnywhere(inodes []uint64, pod []Process) map[uint64]owner {
	names, err := readDirNames(s.procRoot())
	if err != nil {
		return nil
	}
	skip := map[int]bool{}
	for _, p := range pod {
		skip[p.PID] = true
	}
	var procs []Process
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && !skip[pid] {
			procs = append(procs, Process{PID: pid})
		}
	}
	socks := make([]Socket, 0, len(inodes))
	for _, i := range inodes {
		socks = append(socks, Socket{Inode: i})
	}
	return s.owners(procs, socks)
}
