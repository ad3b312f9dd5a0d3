package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// cmdProxy is a TCP round-robin in front of several webhook servers
// (hack/dev.sh up with REPLICAS>1): the API server has one URL, each
// connection goes to the next backend that accepts it, so a stopped
// replica costs no request as long as another one listens. TLS is end to
// end (the replicas share the dev serving certificate).
func cmdProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9443", "address to listen on")
	backends := fs.String("backends", "", "comma-separated backend addresses")
	_ = fs.String("id", "", "ignored; names this process (hack/dev.sh passes a path under .dev/)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	targets := strings.Split(*backends, ",")
	if *backends == "" || len(targets) == 0 {
		return fmt.Errorf("--backends is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; ln.Close() }()
	log.Printf("proxy: %s -> %s (round-robin, next backend on connect failure)", *listen, strings.Join(targets, ", "))
	var next atomic.Uint64
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			log.Printf("proxy: stopping: %v", err)
			return nil
		}
		start := int(next.Add(1))
		go func() {
			defer c.Close()
			var b net.Conn
			for i := range targets {
				t := targets[(start+i)%len(targets)]
				var err error
				b, err = net.DialTimeout("tcp", t, 2*time.Second)
				if err == nil {
					break
				}
			}
			if b == nil {
				log.Printf("proxy: no backend accepts a connection")
				return
			}
			defer b.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(b, c)
			go pipe(c, b)
			<-done
			<-done
		}()
	}
}
