//go:build linux

// Command pause is the dev node's pod sandbox ("infra") container, the
// image containerd's CRI plugin starts first in every pod to hold its
// namespaces (image loopguard-pause:dev, built by hack/images, so the node
// needs no registry). Like the upstream pause it does nothing but wait: it
// exits 0 on SIGTERM or SIGINT and, as PID 1 of a pod that shares its PID
// namespace, reaps every orphaned child so none stays a zombie.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		// Harmless, but then it reaps only its own children (it has none).
		fmt.Fprintln(os.Stderr, "pause: warning: not running as PID 1")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: shutting down, got %s\n", s)
		os.Exit(0)
	}
}

// reap collects every exited child. Signals coalesce, so one SIGCHLD may
// stand for several exits: loop until none is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
