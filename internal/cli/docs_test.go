package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

// The documentation of the CLI lists what the code judges and reports;
// these tests fail when a kind of the kinds table or a reason of the rule
// engine is missing from docs/cli.md or from check --help.

func readCLIDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// paragraphStarting returns the markdown list item or paragraph that
// starts with prefix (up to the next blank line or list item).
func paragraphStarting(t *testing.T, doc, prefix string) string {
	t.Helper()
	i := strings.Index(doc, prefix)
	if i < 0 {
		t.Fatalf("docs/cli.md has no paragraph starting with %q", prefix)
	}
	rest := doc[i+len(prefix):]
	if end := regexp.MustCompile(`\n(\n|- )`).FindStringIndex(rest); end != nil {
		rest = rest[:end[0]]
	}
	return prefix + rest
}

func mentions(text, word string) bool {
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(word) + `\b`).MatchString(text)
}

func TestDocsListJudgedKinds(t *testing.T) {
	judged := paragraphStarting(t, readCLIDocs(t), "- Judged:")
	help, _, _ := run(t, "", "check", "--help")
	for _, k := range kinds.All {
		if !mentions(judged, k.GVK.Kind) {
			t.Errorf("docs/cli.md (- Judged:) does not list %s", k.GVK.Kind)
		}
		if gv := k.GVK.GroupVersion().String(); !strings.Contains(judged, "`"+gv+"`") {
			t.Errorf("docs/cli.md (- Judged:) does not name the version %s of %s", gv, k.GVK.Kind)
		}
		if !mentions(help, k.GVK.Kind) {
			t.Errorf("check --help does not list %s", k.GVK.Kind)
		}
	}
}

func TestDocsListReasons(t *testing.T) {
	doc := readCLIDocs(t)
	help, _, _ := run(t, "", "check", "--help")
	jsonReason := paragraphStarting(t, doc, `      "reason": `)
	sarif := paragraphStarting(t, doc, "The output is SARIF 2.1.0.")
	for _, r := range rules.ObjectReasons {
		if !strings.Contains(doc, "| `"+r+"` |") {
			t.Errorf("docs/cli.md has no row for reason %s in its table of reasons", r)
		}
		if !mentions(jsonReason, r) {
			t.Errorf("docs/cli.md's JSON schema does not list reason %s", r)
		}
		if !mentions(sarif, r) {
			t.Errorf("docs/cli.md's SARIF section does not list rule %s", r)
		}
		if !mentions(help, r) {
			t.Errorf("check --help does not list reason %s", r)
		}
		if _, ok := sarifRuleTexts[r]; !ok {
			t.Errorf("reason %s has no SARIF rule text", r)
		}
	}
	for _, r := range rules.AdmissionReasons {
		if !strings.Contains(doc, "`"+r+"`") {
			t.Errorf("docs/cli.md does not mention the admission-only reason %s", r)
		}
	}
}

// TestDocsAuditorRoleCoversWatchedKinds checks the ClusterRole docs/cli.md
// gives for audit lets it list every kind audit reads from the kinds
// table.
func TestDocsAuditorRoleCoversWatchedKinds(t *testing.T) {
	doc := readCLIDocs(t)
	i := strings.Index(doc, "  name: loopguard-auditor\n")
	if i < 0 {
		t.Fatal("docs/cli.md has no ClusterRole loopguard-auditor")
	}
	start := strings.LastIndex(doc[:i], "```yaml\n") + len("```yaml\n")
	end := start + strings.Index(doc[start:], "```")
	var role rbacv1.ClusterRole
	if err := sigsyaml.UnmarshalStrict([]byte(doc[start:end]), &role); err != nil {
		t.Fatalf("the ClusterRole of docs/cli.md does not parse: %v", err)
	}
	allows := func(group, resource string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) &&
				slices.Contains(r.Verbs, "get") && slices.Contains(r.Verbs, "list") {
				return true
			}
		}
		return false
	}
	for _, k := range kinds.Watched() {
		if !allows(k.GVK.Group, k.Resource) {
			t.Errorf("the loopguard-auditor ClusterRole in docs/cli.md cannot get and list %s (group %q), which audit reads", k.Resource, k.GVK.Group)
		}
	}
}
