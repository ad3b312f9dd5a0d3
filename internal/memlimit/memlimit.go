// Package memlimit sets the Go runtime's soft memory limit from the
// container's cgroup memory limit, so that the garbage collector works
// harder before the kernel's OOM killer does (a burst of 10,000 pod events
// otherwise lets the heap grow to twice its live size).
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction of the cgroup limit given to the Go runtime; the rest is for
// what it does not account (stacks of threads in cgo, the binary's pages).
const Fraction = 0.9

// cgroupFiles are where the memory limit of the process's own cgroup is
// read, relative to the cgroup root: v2 (unified) first, then v1.
var cgroupFiles = []string{"memory.max", "memory/memory.limit_in_bytes"}

// Limit returns the cgroup memory limit under root (normally
// /sys/fs/cgroup, which in a container is the container's own cgroup), or
// 0 when there is none.
func Limit(root string) (int64, error) {
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("failed to read the cgroup memory limit: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("failed to parse the cgroup memory limit %q in %s: %w", s, f, err)
		}
		// cgroup v1 says "no limit" with a huge page-aligned number.
		if n <= 0 || n >= math.MaxInt64/2 {
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}

// Set sets the soft memory limit to Fraction of the cgroup limit under
// root, unless GOMEMLIMIT is set (the operator's choice wins) or there is
// no limit. It returns the limit set, 0 when none.
func Set(root string) (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	limit, err := Limit(root)
	if err != nil || limit == 0 {
		return 0, err
	}
	soft := int64(float64(limit) * Fraction)
	debug.SetMemoryLimit(soft)
	return soft, nil
}
