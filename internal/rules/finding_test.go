package rules

import (
	"slices"
	"testing"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

func TestStricter(t *testing.T) {
	const (
		deny  = v1alpha1.ActionDeny
		warn  = v1alpha1.ActionWarn
		audit = v1alpha1.ActionAudit
	)
	tests := []struct {
		a, b, want v1alpha1.EnforcementAction
	}{
		{deny, warn, deny},
		{warn, deny, deny},
		{deny, audit, deny},
		{audit, deny, deny},
		{warn, audit, warn},
		{audit, warn, warn},
		{audit, audit, audit},
		{warn, warn, warn},
		{deny, deny, deny},
		{"", audit, ""}, // equal severity: the first is kept
		{"", warn, warn},
	}
	for _, tt := range tests {
		t.Run(string(tt.a)+"+"+string(tt.b), func(t *testing.T) {
			if got := Stricter(tt.a, tt.b); got != tt.want {
				t.Errorf("Stricter(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

// decisionFinding is a finding with a fixed message naming its action.
func decisionFinding(name string, action v1alpha1.EnforcementAction) Finding {
	return Finding{
		Object:   ObjectRef{Kind: "Pod", Namespace: "shop", Name: name},
		Field:    "spec.hostNetwork",
		Reason:   ReasonHostNetwork,
		Policies: []PolicyRef{{Kind: KindLoopbackService, Namespace: "shop", Name: "p"}},
		Action:   action,
		format:   string(action) + " by " + policiesMark,
	}
}

func TestDecide(t *testing.T) {
	const (
		deny  = v1alpha1.ActionDeny
		warn  = v1alpha1.ActionWarn
		audit = v1alpha1.ActionAudit
	)
	tests := []struct {
		name         string
		findings     []Finding
		wantAction   v1alpha1.EnforcementAction
		wantMessages map[v1alpha1.EnforcementAction][]string
	}{
		{
			name:       "nil findings: no action",
			findings:   nil,
			wantAction: "",
		},
		{
			name:       "empty findings: no action",
			findings:   []Finding{},
			wantAction: "",
		},
		{
			name:       "single Audit",
			findings:   []Finding{decisionFinding("a", audit)},
			wantAction: audit,
			wantMessages: map[v1alpha1.EnforcementAction][]string{
				audit: {`pod "a" Audit by LoopbackService shop/p`},
			},
		},
		{
			name:       "Warn and Audit: Warn",
			findings:   []Finding{decisionFinding("a", audit), decisionFinding("w", warn)},
			wantAction: warn,
			wantMessages: map[v1alpha1.EnforcementAction][]string{
				warn:  {`pod "w" Warn by LoopbackService shop/p`},
				audit: {`pod "a" Audit by LoopbackService shop/p`},
			},
		},
		{
			name: "Audit, Deny, Warn, Deny: Deny; messages filtered by action, in order",
			findings: []Finding{
				decisionFinding("a", audit), decisionFinding("d1", deny),
				decisionFinding("w", warn), decisionFinding("d2", deny),
			},
			wantAction: deny,
			wantMessages: map[v1alpha1.EnforcementAction][]string{
				deny:  {`pod "d1" Deny by LoopbackService shop/p`, `pod "d2" Deny by LoopbackService shop/p`},
				warn:  {`pod "w" Warn by LoopbackService shop/p`},
				audit: {`pod "a" Audit by LoopbackService shop/p`},
			},
		},
		{
			name:       "Deny first",
			findings:   []Finding{decisionFinding("d", deny), decisionFinding("a", audit)},
			wantAction: deny,
			wantMessages: map[v1alpha1.EnforcementAction][]string{
				deny:  {`pod "d" Deny by LoopbackService shop/p`},
				audit: {`pod "a" Audit by LoopbackService shop/p`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.findings)
			if d.Action != tt.wantAction {
				t.Errorf("Action = %q, want %q", d.Action, tt.wantAction)
			}
			if len(d.Findings) != len(tt.findings) {
				t.Errorf("Findings has %d entries, want %d", len(d.Findings), len(tt.findings))
			}
			for _, a := range []v1alpha1.EnforcementAction{deny, warn, audit, ""} {
				got := d.Messages(a)
				if want := tt.wantMessages[a]; !slices.Equal(got, want) {
					t.Errorf("Messages(%q) = %q, want %q", a, got, want)
				}
			}
		})
	}
}

func TestFindingMessageJoinsPolicies(t *testing.T) {
	f := Finding{
		Object: ObjectRef{Kind: "StatefulSet", Namespace: "shop", Name: "db"},
		Policies: []PolicyRef{
			{Kind: KindClusterLoopbackService, Name: "platform"},
			{Kind: KindLoopbackService, Namespace: "shop", Name: "a"},
			{Kind: KindLoopbackService, Namespace: "shop", Name: "b"},
		},
		format: "is forbidden by " + policiesMark,
	}
	want := `statefulset "db" is forbidden by ClusterLoopbackService platform and LoopbackService shop/a and LoopbackService shop/b`
	if got := f.Message(); got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
}
