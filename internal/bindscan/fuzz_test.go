package bindscan

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// kernelLine writes a /proc/net/{tcp,udp}{,6} line as the kernel does
// (net/ipv4/tcp_ipv4.c, get_tcp4_sock): each 32-bit word of the address is
// the %08X of the __be32 read as a native u32; the port is %04X.
func kernelLine(sl int, local netip.Addr, port uint16, remote string, state uint8, inode uint64) string {
	var a []byte
	if local.Is4() {
		b := local.As4()
		a = b[:]
	} else {
		b := local.As16()
		a = b[:]
	}
	var hex strings.Builder
	for w := 0; w < len(a); w += 4 {
		fmt.Fprintf(&hex, "%08X", binary.NativeEndian.Uint32(a[w:]))
	}
	return fmt.Sprintf("%4d: %s:%04X %s %02X 00000000:00000000 00:00000000 00000000  1000        0 %d 1 0000000000000000 100 0 0 10 0",
		sl, hex.String(), port, remote, state, inode)
}

const tableHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// FuzzParseSocketLine: a socket the kernel would print is read back as it
// was (address, port, inode), and kept exactly when the reference rule
// says so: TCP in LISTEN, UDP unconnected (state 07, zero remote).
func FuzzParseSocketLine(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, uint16(15000), uint8(0x0A), uint64(12345), false, false)
	f.Add([]byte{0, 0, 0, 0}, uint16(53), uint8(0x07), uint64(1), true, false)
	f.Add([]byte{10, 244, 0, 7}, uint16(9901), uint8(0x07), uint64(7), true, true)
	f.Add(netip.MustParseAddr("::1").AsSlice(), uint16(6060), uint8(0x0A), uint64(99), false, false)
	f.Add(netip.MustParseAddr("::ffff:127.0.0.1").AsSlice(), uint16(80), uint8(0x01), uint64(2), false, true)
	f.Fuzz(func(t *testing.T, addr []byte, port uint16, state uint8, inode uint64, udp, connected bool) {
		var local netip.Addr
		switch {
		case len(addr) >= 16:
			local = netip.AddrFrom16([16]byte(addr[:16]))
		case len(addr) >= 4:
			local = netip.AddrFrom4([4]byte(addr[:4]))
		default:
			return
		}
		remote := strings.Repeat("0", len(local.AsSlice())*2) + ":0000"
		if connected {
			remote = strings.Repeat("0", len(local.AsSlice())*2-1) + "1:1F90"
		}
		proto := TCP
		if udp {
			proto = UDP
		}
		line := kernelLine(0, local, port, remote, state, inode)
		got, err := parseTable([]byte(tableHeader+line+"\n"), proto, nil)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		keep := state == stateListen
		if udp {
			keep = state == stateClose && !connected
		}
		want := []Socket{{Protocol: proto, Addr: local, Port: port, Inode: inode}}
		if !keep {
			want = nil
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || (keep && got[0] != want[0]) {
			t.Fatalf("%s (%s): got %v, want %v", line, proto, got, want)
		}
	})
}

// FuzzParseTable: any bytes are parsed or refused without a panic, and a
// socket parseTable keeps, written back as the kernel would, reads back the
// same.
func FuzzParseTable(f *testing.F) {
	f.Add([]byte(tableHeader+kernelLine(0, netip.MustParseAddr("127.0.0.1"), 15000, "00000000:0000", 0x0A, 12345)+"\n"), false)
	f.Add([]byte(tableHeader+kernelLine(0, netip.MustParseAddr("::"), 53, "00000000000000000000000000000000:0000", 0x07, 9)+"\n\n"), true)
	f.Add([]byte("header only"), false)
	f.Add([]byte(tableHeader+"   0: 0100007F:3A98 00000000:0000 0A\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, udp bool) {
		proto := TCP
		if udp {
			proto = UDP
		}
		got, err := parseTable(data, proto, nil)
		if err != nil {
			return
		}
		for _, s := range got {
			zero := strings.Repeat("0", len(s.Addr.AsSlice())*2) + ":0000"
			state := uint8(stateListen)
			if udp {
				state = stateClose
			}
			again, err := parseTable([]byte(tableHeader+kernelLine(0, s.Addr, s.Port, zero, state, s.Inode)), proto, nil)
			if err != nil || len(again) != 1 || again[0] != s {
				t.Fatalf("%v written back reads %v, %v", s, again, err)
			}
		}
	})
}

// FuzzParseSCTPEndpoints and FuzzParseProcCgroup: no input panics, and
// what is found is well formed.
func FuzzParseSCTPEndpoints(f *testing.F) {
	f.Add([]byte(" ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS\n0000000000000000 0000000000000000 2   10  29   15000     0 12345 10.0.0.1 127.0.0.1\n"))
	f.Add([]byte("h\n0 0 2 10 29 99999 0 1 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseSCTPEndpoints(data, nil)
		if err != nil {
			return
		}
		for _, s := range got {
			if !s.Addr.IsValid() {
				t.Fatalf("an SCTP endpoint without a valid address: %+v", s)
			}
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-abc123.scope\n"))
	f.Add([]byte("12:memory:/kubepods/burstable/pod0a1b2c3d-4e5f-6789-abcd-ef0123456789/0123456789abcdef\n0::/\n"))
	f.Add([]byte("0::/system.slice/containerd.service\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pc, ok := parseProcCgroup(data)
		if ok && pc.PodUID == "" {
			t.Fatalf("a pod without a UID from %q", data)
		}
		if !ok && pc != (PodCgroup{}) {
			t.Fatalf("no pod, yet %+v from %q", pc, data)
		}
	})
}
