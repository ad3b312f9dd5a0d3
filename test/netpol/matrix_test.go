//go:build node

package netpol

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/test/devcluster"
)

const (
	// probeTimeout bounds one probe: a connection on the node's bridge is
	// answered in milliseconds, a dropped one never.
	probeTimeout = "1s"
	// probeParallel is how many kubectl execs run at once, over all tests
	// (2 cores).
	probeParallel = 8
	// settleBound is the generous "eventually" for a policy change to show
	// in the data plane: the controller writes the NetworkPolicy, the
	// enforcer's informer sees it. Not a performance assertion; the time
	// actually taken is logged.
	settleBound = 90 * time.Second
)

// probeSlots bounds the kubectl execs of all tests together: the tests
// run in parallel, each in its own namespaces.
var probeSlots = make(chan struct{}, probeParallel)

// cell is one probe: a new flow from a pod to a port of a server.
type cell struct {
	From, To podRef
	Port     port
}

// table maps every probed cell to whether the flow got through.
type table map[cell]bool

// cells are the world's probes: every pod to every port of every other
// pod's server.
func (w *world) cells() []cell {
	var out []cell
	for _, from := range w.pods {
		for _, to := range w.servers {
			if from == to || (w.focus != nil && to != *w.focus) {
				continue
			}
			for _, p := range serverPorts {
				out = append(out, cell{from, to, p})
			}
		}
	}
	return out
}

// expected computes the truth table from the cluster's objects with the
// model; adjust, when set, changes it for what the model does not cover.
func (w *world) expected(adjust func(c cell, open bool) bool) table {
	w.t.Helper()
	m := snapshot(w.t, w)
	tb := table{}
	for _, c := range w.cells() {
		open := m.allowed(c.From, c.To, c.Port)
		if adjust != nil {
			open = adjust(c, open)
		}
		tb[c] = open
	}
	return tb
}

// observed probes every cell in parallel.
func (w *world) observed() table {
	w.t.Helper()
	cells := w.cells()
	res := make([]bool, len(cells))
	errs := make([]error, len(cells))
	parallel(len(cells), probeParallel, func(i int) {
		res[i], errs[i] = w.probe(cells[i])
	})
	tb := table{}
	for i, c := range cells {
		if errs[i] != nil {
			w.t.Fatalf("probe %s -> %s %s: %v", c.From, c.To, c.Port, errs[i])
		}
		tb[c] = res[i]
	}
	return tb
}

// probe runs `listener probe` in the source pod: open when the server
// answers with its name, closed when the probe itself reports no answer;
// anything else (kubectl or the API server failing) is retried, then an
// error.
func (w *world) probe(c cell) (bool, error) {
	open, _, err := w.probeWith(c, probeTimeout)
	return open, err
}

// probeWith is probe with a timeout, also returning what the probe said.
func (w *world) probeWith(c cell, timeout string) (bool, string, error) {
	args := []string{"exec", "-n", c.From.NS, c.From.Name, "-c", "listener", "--", "/listener", "probe", "--timeout", timeout}
	if c.Port.Proto == corev1.ProtocolUDP {
		args = append(args, "--udp")
	}
	args = append(args, fmt.Sprintf("%s:%d", w.ips[c.To], c.Port.Num))
	var last devcluster.Result
	for attempt := 0; attempt < 3; attempt++ {
		probeSlots <- struct{}{}
		last = devcluster.Run(20*time.Second, devcluster.KubeconfigEnv(), "", devcluster.KubectlBin(), args...)
		<-probeSlots
		var exit *exec.ExitError
		switch {
		case last.Err == nil && strings.TrimSpace(last.Stdout) == c.To.Name:
			return true, last.Stdout, nil
		case errors.As(last.Err, &exit) && exit.ExitCode() == 1 && strings.Contains(last.Stderr, "probe ") &&
			strings.Contains(last.Stderr, "command terminated with exit code 1"):
			return false, last.Stderr, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false, "", fmt.Errorf("no verdict after 3 attempts: %s", last)
}

// expectTable probes until the observed table equals want, within
// settleBound, and returns how long that took; on failure it prints both
// tables side by side with the differing cells.
func (w *world) expectTable(name string, want table) time.Duration {
	w.t.Helper()
	start := time.Now()
	rounds := 0
	for {
		got := w.observed()
		rounds++
		if diff := diffTables(want, got); len(diff) == 0 {
			took := time.Since(start)
			w.t.Logf("%s: observed = expected after %d round(s), %s\n%s", name, rounds, took.Round(time.Millisecond), w.render(got))
			return took
		} else if time.Since(start) > settleBound {
			w.t.Fatalf("%s: observed differs from expected after %s (%d rounds); '.' open, 'X' blocked, '!' differs\n%s\n%s",
				name, settleBound, rounds, w.sideBySide(want, got), strings.Join(diff, "\n"))
		}
		time.Sleep(time.Second)
	}
}

func diffTables(want, got table) []string {
	var out []string
	for c, open := range want {
		if got[c] != open {
			out = append(out, fmt.Sprintf("  %s -> %s %s: expected %s, observed %s", c.From, c.To, c.Port, verdict(open), verdict(got[c])))
		}
	}
	return out
}

func verdict(open bool) string {
	if open {
		return "open"
	}
	return "blocked"
}

// render is the table as rows of (from -> to) and columns of ports.
func (w *world) render(tb table) string { return strings.Join(w.lines(tb, nil), "\n") }

func (w *world) sideBySide(want, got table) string {
	l, r := w.lines(want, nil), w.lines(got, want)
	out := []string{fmt.Sprintf("%-*s   %s", len(l[0]), "EXPECTED", "OBSERVED")}
	for i := range l {
		out = append(out, fmt.Sprintf("%-*s | %s", len(l[0]), l[i], r[i]))
	}
	return strings.Join(out, "\n")
}

// lines renders tb; with ref set, cells that differ from ref get a '!'.
func (w *world) lines(tb, ref table) []string {
	short := func(p podRef) string {
		switch p.NS {
		case w.a:
			return "a/" + p.Name
		case w.b:
			return "b/" + p.Name
		}
		return p.String()
	}
	header := fmt.Sprintf("%-16s", "from -> to")
	for _, p := range serverPorts {
		header += fmt.Sprintf(" %-9s", p)
	}
	out := []string{header}
	for _, from := range w.pods {
		for _, to := range w.servers {
			if from == to || (w.focus != nil && to != *w.focus) {
				continue
			}
			row := fmt.Sprintf("%-16s", short(from)+" -> "+short(to))
			for _, p := range serverPorts {
				c := cell{from, to, p}
				mark := "X"
				if tb[c] {
					mark = "."
				}
				if ref != nil && ref[c] != tb[c] {
					mark += "!"
				}
				row += fmt.Sprintf(" %-9s", mark)
			}
			out = append(out, strings.TrimRight(row, " "))
		}
	}
	return out
}
