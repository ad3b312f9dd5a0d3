package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Percentile returns the p-th percentile (0..100, nearest rank) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s)) + 0.999999)
	return s[min(max(rank, 1), len(s))-1]
}

// Sample is the manager's memory at a pod count.
type Sample struct {
	Pods   int
	RSSKiB int64
	// LiveKiB is the Go heap after a forced collection (0: not read).
	LiveKiB int64
}

// Curve renders memory samples and the growth between consecutive ones in
// MB per 1,000 pods.
func Curve(samples []Sample) string {
	var b strings.Builder
	for i, s := range samples {
		fmt.Fprintf(&b, "  %7d pods: RSS %7.1f MB", s.Pods, float64(s.RSSKiB)/1024)
		if s.LiveKiB > 0 {
			fmt.Fprintf(&b, ", live heap %6.1f MB", float64(s.LiveKiB)/1024)
		}
		if i > 0 {
			fmt.Fprintf(&b, "  (%+.2f MB per 1,000 pods since %d)", PerThousand(samples[i-1], s), samples[i-1].Pods)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// PerThousand is the RSS growth from a to b in MB per 1,000 pods.
func PerThousand(a, b Sample) float64 {
	if b.Pods == a.Pods {
		return 0
	}
	return float64(b.RSSKiB-a.RSSKiB) / 1024 / float64(b.Pods-a.Pods) * 1000
}

// Rate renders n items over d as "n in d (r/s)".
func Rate(n int, d time.Duration) string {
	return fmt.Sprintf("%d in %s (%.0f/s)", n, d.Round(time.Second), float64(n)/max(d.Seconds(), 0.001))
}
