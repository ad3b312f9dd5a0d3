package bindscan

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// TestScanClients: connections to a pod's protected loopback ports, held
// open by a process of its app container (itself), by a process of another
// container of the pod, and by a process in the pod's network namespace
// but in none of its containers (what a port-forward or an nsenter from
// the node is); each client end is attributed, the outsider as Outside.
func TestScanClients(t *testing.T) {
	l := layouts[0]
	root := testRoot(t, l)
	server := startChild(t, []string{"tcp4://127.0.0.1:15000", "tcp6://[::1]:15001", "tcp4://0.0.0.0:15002", "connect://127.0.0.1:15000"}, true, false, 0)
	sidecar := startChild(t, []string{"connect://[::1]:15001", "connect://127.0.0.1:15002"}, false, false, server.PID)
	outsider := startChild(t, []string{"connect://127.0.0.1:15000"}, false, false, server.PID)
	uid := newUID(t)
	appID, sidecarID := newContainerID(t), newContainerID(t)
	placeInCgroup(t, filepath.Join(root, l.podDir(uid), l.container(appID)), server.PID)
	placeInCgroup(t, filepath.Join(root, l.podDir(uid), l.container(sidecarID)), sidecar.PID)

	s := &Scanner{ProcRoot: "/proc"}
	ranges := []PortRange{{Protocol: TCP, From: 15000, To: 15002}}
	results, err := s.Scan([]Target{{UID: uid, Ranges: ranges, Clients: true}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range results[0].Clients {
		who := c.ContainerID
		switch {
		case c.Outside:
			who = fmt.Sprintf("outside pid %d", c.PID)
		case c.ContainerID == appID:
			who = fmt.Sprintf("app pid %d", c.PID)
		case c.ContainerID == sidecarID:
			who = fmt.Sprintf("sidecar pid %d", c.PID)
		}
		got = append(got, fmt.Sprintf("%d %s", c.Port, who))
		if c.Process == "" {
			t.Errorf("client %+v: no process name", c)
		}
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("15000 app pid %d", server.PID),
		fmt.Sprintf("15000 outside pid %d", outsider.PID),
		fmt.Sprintf("15001 sidecar pid %d", sidecar.PID),
		// 15002 listens on the wildcard; a connection to it through
		// loopback has its local end on loopback all the same.
		fmt.Sprintf("15002 sidecar pid %d", sidecar.PID),
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("clients:\n got %q\nwant %q", got, want)
	}
	results, err = s.Scan([]Target{{UID: uid, Ranges: ranges}})
	if err != nil || len(results[0].Clients) != 0 {
		t.Errorf("without Clients: %v, %v", results[0].Clients, err)
	}
}

func TestParseConns(t *testing.T) {
	data := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: 0100007F:3A98 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1
   2: 0100007F:9C40 0100007F:3A98 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0 20 4 30 10 -1
`)
	conns, err := parseConns(data, nil)
	if err != nil || len(conns) != 2 {
		t.Fatalf("conns %v, err %v", conns, err)
	}
	ends := clientEnds(conns, []PortRange{{Protocol: TCP, From: 15000, To: 15000}})
	if c, ok := ends[101]; !ok || c.Port != 15000 || len(ends) != 1 {
		t.Errorf("client ends %v, want inode 101 on port 15000", ends)
	}
	if _, err := parseConns([]byte("header\n 0: 0100007F:3A98 01\n"), nil); err == nil {
		t.Error("a short line parsed")
	}
}
