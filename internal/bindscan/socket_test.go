package bindscan

import (
	"net/netip"
	"testing"
)

// Lines as the kernel prints them (net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c,
// net/ipv4/udp.c), on a little-endian machine.
func TestParseLine(t *testing.T) {
	const tail = " 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0"
	tests := []struct {
		name  string
		proto Protocol
		line  string
		want  string // "" when the line is not kept
	}{
		{"tcp loopback listen", TCP, "   0: 0100007F:3A98 00000000:0000 0A" + tail, "TCP 127.0.0.1:15000"},
		{"tcp wildcard listen", TCP, "   1: 00000000:3A98 00000000:0000 0A" + tail, "TCP 0.0.0.0:15000"},
		{"tcp pod IP listen", TCP, "   2: 0500F40A:3A98 00000000:0000 0A" + tail, "TCP 10.244.0.5:15000"},
		{"tcp 127.0.0.53", TCP, "   3: 3500007F:0035 00000000:0000 0A" + tail, "TCP 127.0.0.53:53"},
		{"tcp established is not a listener", TCP, "   4: 0500F40A:3A98 0600F40A:D431 01" + tail, ""},
		{"tcp time-wait", TCP, "   5: 0100007F:3A98 0100007F:D431 06" + tail, ""},
		{"tcp6 wildcard", TCP, "   0: 00000000000000000000000000000000:3A98 00000000000000000000000000000000:0000 0A" + tail, "TCP [::]:15000"},
		{"tcp6 loopback", TCP, "   1: 00000000000000000000000001000000:3A98 00000000000000000000000000000000:0000 0A" + tail, "TCP [::1]:15000"},
		{"tcp6 v4-mapped loopback", TCP, "   2: 0000000000000000FFFF00000100007F:3A98 00000000000000000000000000000000:0000 0A" + tail, "TCP [::ffff:127.0.0.1]:15000"},
		{"tcp6 v4-mapped pod IP", TCP, "   3: 0000000000000000FFFF00000500F40A:3A98 00000000000000000000000000000000:0000 0A" + tail, "TCP [::ffff:10.244.0.5]:15000"},
		{"tcp6 link-local", TCP, "   4: 000080FE00000000000000000100000000:0050 00000000000000000000000000000000:0000 0A" + tail, "error"},
		{"tcp6 fe80::1", TCP, "   4: 000080FE000000000000000001000000:0050 00000000000000000000000000000000:0000 0A" + tail, "TCP [fe80::1]:80"},
		{"tcp6 fd00::1:2", TCP, "   5: 000000FD000000000000000002000100:0050 00000000000000000000000000000000:0000 0A" + tail, "TCP [fd00::1:2]:80"},
		{"udp bound", UDP, "  123: 00000000:14E9 00000000:0000 07" + tail, "UDP 0.0.0.0:5353"},
		{"udp connected", UDP, "  124: 0500F40A:A000 0600F40A:0035 01" + tail, ""},
		{"udp state 07 with a peer", UDP, "  125: 0500F40A:A000 0600F40A:0035 07" + tail, ""},
		{"udp6 bound wildcard", UDP, "  126: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07" + tail, "UDP [::]:5353"},
		{"short line", TCP, "   0: 0100007F:3A98 00000000:0000 0A", "error"},
		{"bad hex", TCP, "   0: 0100007G:3A98 00000000:0000 0A" + tail, "error"},
		{"bad port", TCP, "   0: 0100007F:3A98X 00000000:0000 0A" + tail, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, keep, err := parseLine([]byte(tt.line), tt.proto)
			got := ""
			switch {
			case err != nil:
				got = "error"
			case keep:
				got = s.String()
				if s.Inode != 12345 {
					t.Errorf("inode = %d, want 12345", s.Inode)
				}
			}
			if got != tt.want {
				t.Errorf("parseLine(%q) = %q (err %v), want %q", tt.line, got, err, tt.want)
			}
		})
	}
}

func TestBeyondLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"0.0.0.0", true},
		{"::", true},
		{"10.244.0.5", true},
		{"::ffff:10.244.0.5", true},
		{"fe80::1", true},
	}
	for _, tt := range tests {
		s := Socket{Addr: netip.MustParseAddr(tt.addr)}
		if got := s.BeyondLoopback(); got != tt.want {
			t.Errorf("BeyondLoopback(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestParseTable(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 101 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 102 1 0000000000000000 100 0 0 10 0
   2: 0500F40A:1F90 0100F40A:9C40 01 00000000:00000000 02:000A7B4C 00000000 65532        0 103 2 0000000000000000 20 4 30 10 -1
`
	got, err := parseTable([]byte(table), TCP, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"TCP 127.0.0.1:15000", "TCP 0.0.0.0:8080"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] || got[i].Inode != uint64(101+i) {
			t.Errorf("socket %d = %v (inode %d), want %s (inode %d)", i, got[i], got[i].Inode, want[i], 101+i)
		}
	}
}

func TestParseSCTPEndpoints(t *testing.T) {
	eps := ` ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS
ffff8880069c6000 ffff888006a8d540 2   10  29   15000     0 7777 10.244.0.5 127.0.0.1
ffff8880069c7000 ffff888006a8e540 2   10  30   15001     0 7778 ::1
`
	got, err := parseSCTPEndpoints([]byte(eps), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"SCTP 10.244.0.5:15000", "SCTP 127.0.0.1:15000", "SCTP [::1]:15001"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("endpoint %d = %v, want %s", i, got[i], want[i])
		}
	}
}

func TestSocketInode(t *testing.T) {
	tests := []struct {
		link string
		want uint64
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"pipe:[12345]", 0, false},
		{"/dev/null", 0, false},
		{"socket:[x]", 0, false},
		{"socket:[12", 0, false},
	}
	for _, tt := range tests {
		got, ok := socketInode(tt.link)
		if got != tt.want || ok != tt.ok {
			t.Errorf("socketInode(%q) = %d, %v, want %d, %v", tt.link, got, ok, tt.want, tt.ok)
		}
	}
}
