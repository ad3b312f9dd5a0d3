package main

import (
	"strings"
	"testing"
)

func TestHookRules(t *testing.T) {
	cases := []struct {
		name   string
		h      hook
		want   []string
		absent []string
	}{
		{
			name: "fail-open queues new flows from and to the pod range",
			h:    hook{queue: 100, podCIDR: "10.244.0.0/24", bypass: true},
			want: []string{
				"*filter", ":LGNP-ENFORCER - [0:0]", "-F LGNP-ENFORCER",
				"-A LGNP-ENFORCER -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
				"-A LGNP-ENFORCER -p tcp -s 10.244.0.0/24 -j NFQUEUE --queue-num 100 --queue-bypass",
				"-A LGNP-ENFORCER -p udp -d 10.244.0.0/24 -j NFQUEUE --queue-num 100 --queue-bypass",
				"-A LGNP-ENFORCER -p sctp -d 10.244.0.0/24 -j NFQUEUE --queue-num 100 --queue-bypass",
				"COMMIT",
			},
		},
		{
			name:   "fail-closed has no bypass",
			h:      hook{queue: 7, podCIDR: "10.0.0.0/8"},
			want:   []string{"-A LGNP-ENFORCER -p tcp -d 10.0.0.0/8 -j NFQUEUE --queue-num 7"},
			absent: []string{"--queue-bypass"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.h.rules()
			lines := map[string]bool{}
			for _, l := range strings.Split(got, "\n") {
				lines[l] = true
			}
			for _, w := range tc.want {
				if !lines[w] {
					t.Errorf("rules lack %q:\n%s", w, got)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("rules contain %q:\n%s", a, got)
				}
			}
			// The RETURN for established flows must come before any queue rule.
			if strings.Index(got, "ESTABLISHED") > strings.Index(got, "NFQUEUE") {
				t.Errorf("established flows are queued before they return:\n%s", got)
			}
		})
	}
}
