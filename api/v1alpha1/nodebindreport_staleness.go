package v1alpha1

import "time"

// Defaults a NodeBindReport's readers assume when the agent leaves
// status.scanInterval or status.refreshInterval unset.
const (
	DefaultScanInterval    = time.Minute
	DefaultRefreshInterval = 5 * time.Minute
)

// staleAfterScans is how many scans past the refresh interval a report may
// miss before it is stale.
const staleAfterScans = 2

// StaleAt returns when the report goes stale: its last written scan plus
// the agent's refresh interval (an unchanged report is rewritten only that
// often) plus two scan intervals (one missed scan is tolerated). A stale
// report's agent is gone, stuck or cannot write, and its pods count as
// unchecked. A report that never finished a scan is stale from the start
// (the zero time). The controller, the CLI and the docs use this one rule.
func (r *NodeBindReport) StaleAt() time.Time {
	if r.Status.ScannedAt == nil {
		return time.Time{}
	}
	interval, refresh := DefaultScanInterval, DefaultRefreshInterval
	if d := r.Status.ScanInterval; d != nil && d.Duration > 0 {
		interval = d.Duration
	}
	if d := r.Status.RefreshInterval; d != nil && d.Duration > 0 {
		refresh = d.Duration
	}
	return r.Status.ScannedAt.Add(max(refresh, interval) + staleAfterScans*interval)
}
