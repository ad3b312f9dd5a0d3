// Package metricstest reads Prometheus collectors as a scrape would, for
// tests.
package metricstest

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopguard/loopguard/internal/metrics"
)

// Scrape gathers c as Prometheus would, through a pedantic registry
// (which also checks every sample against a described family): each
// gauge or counter series as Prometheus's text format names it,
// name{label="value",...} with the labels sorted by name. For tests and
// diagnostics.
func Scrape(c prometheus.Collector) (map[string]float64, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			vals := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() { // sorted by name by the registry
				vals = append(vals, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(vals, ",")+"}"] = v
		}
	}
	return out, nil
}

// PolicySeries names a per-policy series as Scrape does: extra is the
// family's label beyond the policy's, as name and value ("reason",
// "HostPort"), or none.
func PolicySeries(family string, k metrics.PolicyKey, extra ...string) string {
	pairs := []string{`policy=` + strconv.Quote(k.Name), `policy_kind=` + strconv.Quote(k.Kind), `policy_namespace=` + strconv.Quote(k.Namespace)}
	if len(extra) == 2 {
		pairs = append(pairs, extra[0]+`=`+strconv.Quote(extra[1]))
	}
	slices.Sort(pairs)
	return family + "{" + strings.Join(pairs, ",") + "}"
}
