// Package proc reads what the bench tools need of a process from /proc
// and its PID file.
package proc

import (
	"os"
	"strconv"
	"strings"
)

// ReadPID reads a PID file; 0 when it cannot.
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
