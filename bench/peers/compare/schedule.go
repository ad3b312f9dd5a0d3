package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// slot is one timed round of one engine at one concurrency.
type slot struct {
	engine      string
	round       int
	concurrency int
}

// interleave orders the rounds A B C D A B C D ...: round r of every engine
// before round r+1 of any, so that a drift of the machine (another job, a
// garbage collection, an audit pass) spreads over every engine instead of
// landing on one.
func interleave(engines []string, rounds int, concurrencies []int) []slot {
	var out []slot
	for r := 0; r < rounds; r++ {
		for _, c := range concurrencies {
			for _, e := range engines {
				out = append(out, slot{engine: e, round: r, concurrency: c})
			}
		}
	}
	return out
}

// cpuTicks is the user+system CPU time of a process in clock ticks, from
// the text of /proc/<pid>/stat (fields 14 and 15; the command name, field
// 2, is in parentheses and may hold spaces).
func cpuTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11]; stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line %q", stat)
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return u + s, nil
}

// clockTicks is USER_HZ, 100 on every Linux the harness runs on.
const clockTicks = 100

// busiest returns the process that used the most CPU between two readings
// and its use as a fraction of one core.
func busiest(before, after map[string]uint64, elapsed time.Duration) (string, float64) {
	name, most := "", 0.0
	for k, a := range after {
		b, ok := before[k]
		if !ok || a < b {
			continue
		}
		use := float64(a-b) / clockTicks / elapsed.Seconds()
		if use > most || name == "" {
			name, most = k, use
		}
	}
	return name, most
}

// idleThreshold: a process using less than this share of one core over
// idleWindow is idle.
const (
	idleThreshold = 0.10
	idleWindow    = 2 * time.Second
)

// readTicks reads the CPU time of every named process; one that is gone
// is left out.
func readTicks(pids map[string]int) map[string]uint64 {
	out := map[string]uint64{}
	for name, pid := range pids {
		if pid == 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if t, err := cpuTicks(string(b)); err == nil {
			out[name] = t
		}
	}
	return out
}

// waitIdle waits until every process of pids used less than idleThreshold
// of a core over one idleWindow, up to timeout. It returns how long it
// waited and, on timeout, which process was still busy.
func waitIdle(ctx context.Context, pids map[string]int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		before := readTicks(pids)
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(idleWindow):
		}
		name, use := busiest(before, readTicks(pids), time.Since(t0))
		if use < idleThreshold {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%s still used %.0f%% of a core after %s", name, use*100, timeout)
		}
	}
}

// idleTimeout bounds one wait for idleness; a round that starts after it
// is listed in the report.
func (e *env) idleTimeout() time.Duration {
	if e.opts.quick {
		return 15 * time.Second
	}
	return time.Minute
}

// apiServerPID is the compare cluster's kube-apiserver (hack/dev.sh's pid
// file), which runs the VAPs and every request.
func (e *env) apiServerPID() int {
	b, err := os.ReadFile(filepath.Join(e.opts.devDir, "run/kube-apiserver.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
