package bindscan

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
)

// Protocol is a transport protocol, spelled as Kubernetes spells it.
type Protocol string

// Protocols the scanner reads.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Kernel socket states (include/net/tcp_states.h) the scanner keeps.
const (
	stateEstablished = 0x01 // a connected UDP socket shows this
	stateClose       = 0x07 // an unconnected (bound) UDP socket
	stateListen      = 0x0A
)

// Socket is one listening (TCP, SCTP) or bound (UDP) socket of a network
// namespace.
type Socket struct {
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	Inode    uint64
}

// String renders "TCP 0.0.0.0:15000".
func (s Socket) String() string {
	return fmt.Sprintf("%s %s", s.Protocol, netip.AddrPortFrom(s.Addr, s.Port))
}

// BeyondLoopback reports whether the socket accepts traffic from outside
// the namespace's loopback: anything but 127.0.0.0/8 and ::1, which
// includes the wildcards 0.0.0.0 and ::, and v4-mapped loopback counts as
// loopback (::ffff:127.0.0.1 is 127.0.0.1).
func (s Socket) BeyondLoopback() bool {
	return !s.Addr.Unmap().IsLoopback()
}

// parseTable appends to out the sockets of one /proc/net/{tcp,tcp6,udp,udp6}
// table that listen (TCP) or are bound and unconnected (UDP). Lines that do
// not parse are an error: the format is the kernel's ABI.
func parseTable(data []byte, proto Protocol, out []Socket) ([]Socket, error) {
	first := true
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if first { // the header
			first = false
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s, keep, err := parseLine(line, proto)
		if err != nil {
			return out, err
		}
		if keep {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseLine parses one table line:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//	0: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12345 ...
//
// keep is false for sockets that neither listen nor are bound: TCP in any
// state but LISTEN, UDP connected to a peer.
func parseLine(line []byte, proto Protocol) (s Socket, keep bool, err error) {
	var f [10][]byte
	n := 0
	for i := 0; i < len(line) && n < len(f); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if j > i {
			f[n] = line[i:j]
			n++
		}
		i = j
	}
	if n < len(f) {
		return s, false, fmt.Errorf("failed to parse socket line %q: %d fields, want at least %d", line, n, len(f))
	}
	state, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil {
		return s, false, fmt.Errorf("failed to parse state in %q: %w", line, err)
	}
	switch proto {
	case TCP:
		if state != stateListen {
			return s, false, nil
		}
	case UDP:
		// A UDP socket that connect()ed has a peer and takes datagrams from
		// it alone; a bound one shows state 07 and a zero remote address.
		if state != stateClose || !zeroRemote(f[2]) {
			return s, false, nil
		}
	}
	addr, port, err := parseAddrPort(f[1])
	if err != nil {
		return s, false, fmt.Errorf("failed to parse local address in %q: %w", line, err)
	}
	inode, err := strconv.ParseUint(string(f[9]), 10, 64)
	if err != nil {
		return s, false, fmt.Errorf("failed to parse inode in %q: %w", line, err)
	}
	return Socket{Protocol: proto, Addr: addr, Port: port, Inode: inode}, true, nil
}

// zeroRemote reports whether a rem_address is all zeros ("00000000:0000").
func zeroRemote(b []byte) bool {
	for _, c := range b {
		if c != '0' && c != ':' {
			return false
		}
	}
	return true
}

// parseAddrPort decodes "0100007F:3A98" (IPv4) or a 32-digit IPv6 address
// and a port. The kernel prints the address as 32-bit words, each the %08X
// of a __be32 read as a native u32, so on a little-endian machine every
// 4-byte group is reversed; the port is printed as a number.
func parseAddrPort(b []byte) (netip.Addr, uint16, error) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return netip.Addr{}, 0, fmt.Errorf("no port in %q", b)
	}
	hexAddr, hexPort := b[:i], b[i+1:]
	port, err := strconv.ParseUint(string(hexPort), 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("port %q: %w", hexPort, err)
	}
	var raw [16]byte
	switch len(hexAddr) {
	case 8, 32:
	default:
		return netip.Addr{}, 0, fmt.Errorf("address %q: %d hex digits, want 8 or 32", hexAddr, len(hexAddr))
	}
	n, err := hex.Decode(raw[:], hexAddr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: %w", hexAddr, err)
	}
	for w := 0; w < n; w += 4 {
		binary.NativeEndian.PutUint32(raw[w:], binary.BigEndian.Uint32(raw[w:]))
	}
	if n == 4 {
		return netip.AddrFrom4([4]byte(raw[:4])), uint16(port), nil
	}
	return netip.AddrFrom16(raw), uint16(port), nil
}

// parseSCTPEndpoints appends the endpoints of /proc/net/sctp/eps, one Socket
// per local address (an SCTP endpoint may bind several):
//
//	 ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS
//	0000000000000000 0000000000000000 2   10  29   15000     0 12345 10.0.0.1 127.0.0.1
func parseSCTPEndpoints(data []byte, out []Socket) ([]Socket, error) {
	lines := bytes.Split(data, []byte{'\n'})
	for _, line := range lines[min(1, len(lines)):] {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 9 {
			return out, fmt.Errorf("failed to parse SCTP endpoint line %q: %d fields, want at least 9", line, len(f))
		}
		port, err := strconv.ParseUint(string(f[5]), 10, 16)
		if err != nil {
			return out, fmt.Errorf("failed to parse SCTP port in %q: %w", line, err)
		}
		inode, err := strconv.ParseUint(string(f[7]), 10, 64)
		if err != nil {
			return out, fmt.Errorf("failed to parse SCTP inode in %q: %w", line, err)
		}
		for _, a := range f[8:] {
			addr, err := netip.ParseAddr(string(a))
			if err != nil {
				return out, fmt.Errorf("failed to parse SCTP address in %q: %w", line, err)
			}
			out = append(out, Socket{Protocol: SCTP, Addr: addr, Port: uint16(port), Inode: inode})
		}
	}
	return out, nil
}
