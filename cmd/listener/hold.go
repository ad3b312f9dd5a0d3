package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// runHold is `listener hold HOST:PORT`: it connects (retrying every 200ms
// until the listener is up) and holds the connection open until SIGTERM or
// the peer closes it: a long-lived client, as the node agent samples them.
func runHold(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("listener hold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: listener hold HOST:PORT")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var c net.Conn
	for {
		var err error
		var d net.Dialer
		if c, err = d.DialContext(ctx, "tcp", fs.Arg(0)); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer c.Close()
	fmt.Fprintf(stdout, "holding %s -> %s\n", c.LocalAddr(), c.RemoteAddr())
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()
	select {
	case <-ctx.Done():
	case <-closed:
	}
	return 0
}
