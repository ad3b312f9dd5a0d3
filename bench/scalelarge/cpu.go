package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// every Linux architecture the bench runs on).
const clockTicks = 100

// cpuSeconds reads the user + system CPU time of process pid so far; -1
// when it cannot.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime + stime (fields 14 and 15) of a
// /proc/<pid>/stat line in seconds; the command (field 2) may hold spaces
// and parentheses, so the fields are counted after its last ')'.
func parseStatCPU(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(u+s) / clockTicks
}

// cpuMeter is the CPU time of the processes of a run, by name.
type cpuMeter map[string]int // name → PID

func (m cpuMeter) read() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range m {
		out[name] = cpuSeconds(pid)
	}
	return out
}

// since says how much CPU each process used between two readings over
// wall seconds, as CPU seconds and cores.
func (m cpuMeter) since(before map[string]float64, wall float64) string {
	now := m.read()
	var parts []string
	for _, name := range []string{"manager", "kube-apiserver", "etcd", "kwok", "kube-controller-manager", "bench"} {
		b, a := before[name], now[name]
		if _, ok := m[name]; !ok || b < 0 || a < 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f s (%.2f cores)", name, a-b, (a-b)/wall))
	}
	return strings.Join(parts, ", ")
}
