// Command listener is the test workload of the dev node (image
// loopguard-listener:dev, built by hack/images). It listens on every
// address it is given and answers each TCP connection and each UDP datagram
// with its name, so a test can tell which pod, and which bind address,
// answered:
//
//	listener --listen tcp://0.0.0.0:8080 --listen tcp://127.0.0.1:15000 --listen udp://[::]:5353
//
// A listener bound to 127.0.0.1 inside a pod is reachable from the pod
// only — and through kubectl port-forward, the hole a port-forward guard
// must close. The probe subcommand is the matching client:
//
//	listener probe [--timeout 2s] [--udp] HOST:PORT
//
// (listener hold HOST:PORT connects and holds the connection open until
// SIGTERM: a long-lived client.)
//
// exits 0 when it can connect (UDP: when a datagram it sends is answered)
// and prints the answer, 1 when not, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(runProbe(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "hold" {
		os.Exit(runHold(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(runServe(os.Args[1:], os.Stderr))
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("listener", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listens listFlag
	fs.Var(&listens, "listen", "address to listen on, tcp://HOST:PORT or udp://HOST:PORT (repeatable)")
	name := fs.String("name", "", "name to answer with (default: $POD_NAME, else the hostname, which is the pod name in a pod)")
	keepOpen := fs.Bool("keep-open", false, "after the answer, keep each TCP connection open until the client closes it (long-lived clients, as the node agent samples them)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(listens) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: listener --listen tcp://HOST:PORT|udp://HOST:PORT [--listen ...] [--name NAME]")
		return 2
	}
	logger := log.New(stderr, "", log.LstdFlags)
	answer := *name
	if answer == "" {
		answer = defaultName()
	}
	srv, err := listen(listens, answer)
	if err != nil {
		logger.Printf("listener: %v", err)
		return 1
	}
	srv.keepOpen = *keepOpen
	for _, a := range srv.addrs() {
		logger.Printf("listening on %s, answering %q", a, answer)
	}
	// PID 1 in a container gets no default signal handling: without this a
	// SIGTERM from the kubelet would be ignored until the grace period ends.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv.serve(ctx, logger)
	logger.Printf("stopped")
	return 0
}

func defaultName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "listener"
}

// server holds the bound sockets; listen binds them all before anything is
// served, so a bad address fails the start instead of a later request.
type server struct {
	answer   []byte
	keepOpen bool
	streams  []net.Listener
	packets  []net.PacketConn
}

// parseListen splits "tcp://0.0.0.0:8080" into a network and an address
// that net.Listen / net.ListenPacket accept.
func parseListen(spec string) (network, addr string, err error) {
	network, addr, ok := strings.Cut(spec, "://")
	if !ok {
		return "", "", fmt.Errorf("--listen %q: want tcp://HOST:PORT or udp://HOST:PORT", spec)
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return "", "", fmt.Errorf("--listen %q: unknown network %q (tcp, tcp4, tcp6, udp, udp4, udp6)", spec, network)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("--listen %q: %w", spec, err)
	}
	return network, addr, nil
}

func listen(specs []string, answer string) (*server, error) {
	s := &server{answer: []byte(answer + "\n")}
	for _, spec := range specs {
		network, addr, err := parseListen(spec)
		if err != nil {
			s.close()
			return nil, err
		}
		if strings.HasPrefix(network, "tcp") {
			l, err := net.Listen(network, addr)
			if err != nil {
				s.close()
				return nil, fmt.Errorf("listen %s: %w", spec, err)
			}
			s.streams = append(s.streams, l)
			continue
		}
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listen %s: %w", spec, err)
		}
		s.packets = append(s.packets, pc)
	}
	return s, nil
}

// addrs returns the bound addresses as network://addr, with the real port
// for a port 0.
func (s *server) addrs() []string {
	var out []string
	for _, l := range s.streams {
		out = append(out, "tcp://"+l.Addr().String())
	}
	for _, pc := range s.packets {
		out = append(out, "udp://"+pc.LocalAddr().String())
	}
	return out
}

func (s *server) close() {
	for _, l := range s.streams {
		_ = l.Close()
	}
	for _, pc := range s.packets {
		_ = pc.Close()
	}
}

// serve answers until ctx is done, then closes every socket and returns
// once every serving goroutine has.
func (s *server) serve(ctx context.Context, logger *log.Logger) {
	var wg sync.WaitGroup
	for _, l := range s.streams {
		wg.Go(func() { s.serveStream(l, logger) })
	}
	for _, pc := range s.packets {
		wg.Go(func() { s.servePackets(pc, logger) })
	}
	<-ctx.Done()
	s.close()
	wg.Wait()
}

func (s *server) serveStream(l net.Listener, logger *log.Logger) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.Printf("accept on %s: %v", l.Addr(), err)
			}
			return
		}
		go func() {
			defer c.Close()
			// Bounded: a peer that never reads must not pin a goroutine.
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(s.answer); err != nil {
				logger.Printf("answer %s on %s: %v", c.RemoteAddr(), l.Addr(), err)
				return
			}
			if s.keepOpen {
				_, _ = io.Copy(io.Discard, c) // until the client closes
			}
		}()
	}
}

func (s *server) servePackets(pc net.PacketConn, logger *log.Logger) {
	buf := make([]byte, 64<<10)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.Printf("read on %s: %v", pc.LocalAddr(), err)
			}
			return
		}
		if _, err := pc.WriteTo(s.answer, from); err != nil {
			logger.Printf("answer %s on %s: %v", from, pc.LocalAddr(), err)
		}
	}
}

// ---------------------------------------------------------------- probe

// tcpReadWindow bounds the wait for a TCP answer once connected: a listener
// answers at once.
const tcpReadWindow = time.Second

func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("listener probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	udp := fs.Bool("udp", false, "probe UDP: send a datagram and wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: listener probe [--timeout 2s] [--udp] HOST:PORT")
		return 2
	}
	answer, err := probe(fs.Arg(0), *udp, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "probe %s: %v\n", fs.Arg(0), err)
		return 1
	}
	fmt.Fprintln(stdout, answer)
	return 0
}

// probe connects to addr and returns the listener's answer. For TCP the
// connection is what counts: a peer that accepts but says nothing (a TLS
// server waiting for its client) still succeeds, with an empty answer,
// after at most tcpReadWindow.
func probe(addr string, udp bool, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	network := "tcp"
	if udp {
		network = "udp"
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if udp {
		// UDP has no connection: only an answer proves a listener.
		if err := c.SetDeadline(deadline); err != nil {
			return "", fmt.Errorf("set deadline: %w", err)
		}
		if _, err := c.Write([]byte("probe\n")); err != nil {
			return "", fmt.Errorf("send: %w", err)
		}
		buf := make([]byte, 1024)
		n, err := c.Read(buf)
		if err != nil {
			return "", fmt.Errorf("no answer: %w", err)
		}
		return strings.TrimSpace(string(buf[:n])), nil
	}
	if w := time.Now().Add(tcpReadWindow); w.Before(deadline) {
		deadline = w
	}
	if err := c.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("set deadline: %w", err)
	}
	// A read error (timeout, reset) keeps what arrived before it: the
	// connect already succeeded. Note that a connect through a proxy such as
	// kubectl port-forward succeeds even when nothing listens behind it, so
	// callers that care compare the answer.
	b, _ := io.ReadAll(io.LimitReader(c, 1024))
	return strings.TrimSpace(string(b)), nil
}
