package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Where a webhook's added time goes, from the counters of the API server
// (apiserver_admission_webhook_admission_duration_seconds: the whole call,
// as the API server times it) and of each webhook's server
// (controller_runtime_webhook_latency_seconds: its handler alone), over
// the interleaved phases. The difference of the two is the transport: TLS,
// HTTP and the scheduling of the webhook's process.

// histograms are a scrape's histogram sums and counts, by series.
type histograms map[string]float64

// scrape reads the _sum and _count series of the named histograms.
func scrape(text string, names ...string) histograms {
	h := histograms{}
	for _, line := range strings.Split(text, "\n") {
		for _, n := range names {
			if !strings.HasPrefix(line, n+"_sum{") && !strings.HasPrefix(line, n+"_count{") {
				continue
			}
			i := strings.LastIndex(line, " ")
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				h[line[:i]] += v
			}
		}
	}
	return h
}

// mean is the mean in ms, over after - before, of the series of histogram
// name whose labels contain every one of match.
func mean(before, after histograms, name string, match ...string) (float64, float64) {
	var sum, count float64
	for series, v := range after {
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(series, m)
		}
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(series, name+"_sum{"):
			sum += v - before[series]
		case strings.HasPrefix(series, name+"_count{"):
			count += v - before[series]
		}
	}
	if count == 0 {
		return 0, 0
	}
	return sum / count * 1000, count
}

const (
	apiHist     = "apiserver_admission_webhook_admission_duration_seconds"
	handlerHist = "controller_runtime_webhook_latency_seconds"
)

// breakdownScrape is one reading of the three sources.
type breakdownScrape struct{ api, manager, empty histograms }

func (e *env) breakdownScrape(ctx context.Context, managerMetrics func() (string, error), emptyMetricsURL string) (breakdownScrape, error) {
	var s breakdownScrape
	raw, err := e.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return s, fmt.Errorf("API server metrics: %w", err)
	}
	s.api = scrape(string(raw), apiHist)
	text, err := managerMetrics()
	if err != nil {
		return s, fmt.Errorf("loopguard metrics: %w", err)
	}
	s.manager = scrape(text, handlerHist)
	resp, err := http.Get(emptyMetricsURL) //nolint:gosec,noctx // loopback, the bench's own process
	if err != nil {
		return s, fmt.Errorf("empty webhook metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	s.empty = scrape(string(b), handlerHist)
	return s, nil
}

// printBreakdown prints, per webhook, the mean call as the API server
// timed it, the mean in its handler, and the rest.
func printBreakdown(before, after breakdownScrape, loopguardPath, emptyPath string) {
	fmt.Println("where the added time goes (means over the interleaved phases; API server call minus handler = TLS, HTTP, scheduling):")
	rows := []struct {
		label             string
		api               []string
		handler           histograms
		handlerBefore     histograms
		handlerPathLabels string
	}{
		{"(b) empty webhook", []string{`name="empty.registrationbench.loopguard.io"`}, after.empty, before.empty, `webhook="` + emptyPath + `"`},
		{"(f) empty + matchConditions", []string{`name="empty-mc.registrationbench.loopguard.io"`}, after.empty, before.empty, ""},
		{"(c) loopguard", []string{`name="pods.`}, after.manager, before.manager, `webhook="` + loopguardPath + `"`},
	}
	fmt.Printf("  %-30s %14s %14s %14s %8s\n", "webhook", "API call ms", "handler ms", "rest ms", "calls")
	for _, r := range rows {
		call, n := mean(before.api, after.api, apiHist, r.api...)
		if r.handlerPathLabels == "" {
			fmt.Printf("  %-30s %14.3f %14s %14s %8.0f\n", r.label, call, "(b)'s", "", n)
			continue
		}
		h, _ := mean(r.handlerBefore, r.handler, handlerHist, r.handlerPathLabels)
		fmt.Printf("  %-30s %14.3f %14.3f %14.3f %8.0f\n", r.label, call, h, call-h, n)
	}
}
