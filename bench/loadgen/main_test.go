package main

import (
	"strings"
	"testing"

	"github.com/loopguard/loopguard/test/workload"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.concurrency != 8 || o.policies != 1000 || o.placement != workload.Spread || len(o.mix) != 3 {
		t.Errorf("defaults: concurrency %d, policies %d, placement %s, %d request kinds", o.concurrency, o.policies, o.placement, len(o.mix))
	}
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"--url", "https://10.0.0.1:9443/validate-exposure", "--ca", "ca.crt"}, "only https://127.0.0.1"},
		{[]string{"--url", "https://127.0.0.1:9443/validate-exposure"}, "--url needs --ca"},
		{[]string{"--ca", "ca.crt"}, "need --url"},
		{[]string{"--mix", "denied-pod=1,nonsense=1"}, `unknown kind "nonsense"`},
		{[]string{"--mix", "denied-pod=101"}, "0..100"},
		{[]string{"--mix", "denied-pod=0"}, "no request kind"},
		{[]string{"--placement", "everywhere"}, "--placement"},
		{[]string{"--concurrency", "0"}, "--concurrency"},
		{[]string{"--duration", "2m"}, "--duration"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		if _, err := parseFlags(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestParseMixWeights(t *testing.T) {
	mix, err := parseMix("allowed-pod=2, service, denied-pod-10=0")
	if err != nil {
		t.Fatal(err)
	}
	if len(mix) != 2 || mix[0].name != "allowed-pod" || mix[0].weight != 2 || mix[1].name != "service" || mix[1].weight != 1 {
		t.Errorf("parseMix = %+v, want allowed-pod=2 and service=1 (a weight of 0 drops the kind)", mix)
	}
}
