package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"
)

// startServer serves on loopback ports chosen by the kernel and returns the
// bound addresses by network.
func startServer(t *testing.T, answer string, specs ...string) (tcp, udp []string) {
	t.Helper()
	srv, err := listen(specs, answer)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.serve(ctx, log.New(io.Discard, "", 0))
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("serve did not return within 5s of cancel")
		}
	})
	for _, a := range srv.addrs() {
		network, addr, _ := strings.Cut(a, "://")
		if network == "tcp" {
			tcp = append(tcp, addr)
		} else {
			udp = append(udp, addr)
		}
	}
	return tcp, udp
}

func TestAnswersTCPAndUDPWithItsName(t *testing.T) {
	tcp, udp := startServer(t, "pod-a", "tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp4://127.0.0.1:0")
	if len(tcp) != 2 || len(udp) != 1 {
		t.Fatalf("bound tcp=%v udp=%v, want 2 TCP and 1 UDP", tcp, udp)
	}
	for _, a := range tcp {
		got, err := probe(a, false, 2*time.Second)
		if err != nil || got != "pod-a" {
			t.Errorf("TCP probe %s = %q, %v; want pod-a", a, got, err)
		}
	}
	// Twice: one datagram must not end the UDP loop.
	for range 2 {
		got, err := probe(udp[0], true, 2*time.Second)
		if err != nil || got != "pod-a" {
			t.Errorf("UDP probe %s = %q, %v; want pod-a", udp[0], got, err)
		}
	}
}

func TestProbeFailsWhenNothingListens(t *testing.T) {
	// Bind then close: a port that was free a moment ago and now refuses.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	if got, err := probe(addr, false, time.Second); err == nil {
		t.Errorf("TCP probe of closed %s succeeded with %q", addr, got)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uaddr := pc.LocalAddr().String()
	_ = pc.Close()
	// A probe that ignored its timeout would hang here (go test -timeout).
	start := time.Now()
	if got, err := probe(uaddr, true, 300*time.Millisecond); err == nil {
		t.Errorf("UDP probe of closed %s succeeded with %q", uaddr, got)
	}
	t.Logf("UDP probe of a closed port returned after %s (timeout 300ms)", time.Since(start).Round(time.Millisecond))
}

func TestProbeCommandExitCodes(t *testing.T) {
	tcp, _ := startServer(t, "pod-b", "tcp://127.0.0.1:0")
	var out, errb bytes.Buffer
	if rc := runProbe([]string{"--timeout", "2s", tcp[0]}, &out, &errb); rc != 0 || strings.TrimSpace(out.String()) != "pod-b" {
		t.Errorf("probe %s: rc=%d out=%q err=%q; want 0 and pod-b", tcp[0], rc, out.String(), errb.String())
	}
	if rc := runProbe(nil, io.Discard, io.Discard); rc != 2 {
		t.Errorf("probe without address: rc=%d, want 2", rc)
	}
}

func TestRejectsBadListenAddresses(t *testing.T) {
	for _, spec := range []string{"0.0.0.0:80", "sctp://0.0.0.0:80", "tcp://0.0.0.0", "tcp://[::1"} {
		if _, err := listen([]string{spec}, "x"); err == nil {
			t.Errorf("listen(%q) succeeded, want an error", spec)
		}
	}
	if rc := runServe(nil, io.Discard); rc != 2 {
		t.Errorf("serve without --listen: rc=%d, want 2", rc)
	}
}

func TestListenFailureClosesWhatItBound(t *testing.T) {
	// The second address is taken: the first socket must be released too.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	_ = free.Close()
	if _, err := listen([]string{"tcp://" + freeAddr, "tcp://" + busy.Addr().String()}, "x"); err == nil {
		t.Fatal("listen on a busy address succeeded")
	}
	l, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("first address still held after a failed listen: %v", err)
	}
	_ = l.Close()
}

func TestProbeOfASilentTCPServerSucceedsWithinTheReadWindow(t *testing.T) {
	// Like a TLS server, it accepts and waits for the client to speak.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// The probe's own timeout is an hour: only the read window can end it
	// (a probe that waited for an answer until its timeout would hang here,
	// and go test -timeout fails it).
	start := time.Now()
	got, err := probe(l.Addr().String(), false, time.Hour)
	if err != nil || got != "" {
		t.Errorf("probe of a silent server = %q, %v; want success with no answer", got, err)
	}
	t.Logf("probe of a silent server returned after %s (read window %s)", time.Since(start).Round(time.Millisecond), tcpReadWindow)
}

// TestHold: hold connects, stays connected until its peer closes, and
// says what it holds.
func TestHold(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- runHold([]string{ln.Addr().String()}, &out, io.Discard) }()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		t.Fatalf("hold returned %d while connected", code)
	case <-time.After(100 * time.Millisecond):
	}
	c.Close()
	if code := <-done; code != 0 || !strings.Contains(out.String(), "holding ") {
		t.Errorf("hold: %d, %q", code, out.String())
	}
}
