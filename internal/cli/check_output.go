package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// counts tallies findings by action.
type counts struct {
	deny, warn, audit int
}

func countActions(actions []v1alpha1.EnforcementAction) counts {
	var c counts
	for _, a := range actions {
		switch a {
		case v1alpha1.ActionDeny:
			c.deny++
		case v1alpha1.ActionWarn:
			c.warn++
		default:
			c.audit++
		}
	}
	return c
}

func resultActions(results []checkResult) []v1alpha1.EnforcementAction {
	out := make([]v1alpha1.EnforcementAction, len(results))
	for i, r := range results {
		out[i] = r.finding.Action
	}
	return out
}

// objectLabel renders "Deployment shop/cart".
func objectLabel(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// writeCheckText prints one line per finding and a summary:
//
//	deploy.yaml:21: [Deny] Deployment shop/cart: spec.template...: <message>
func writeCheckText(w io.Writer, in *checkInput, results []checkResult) {
	for _, r := range results {
		f := r.finding
		fmt.Fprintf(w, "%s:%d: [%s] %s: %s: %s\n", r.file, r.line, f.Action,
			objectLabel(f.Object.Kind, r.object.namespace, f.Object.Name), f.Field, f.Message())
	}
	c := countActions(resultActions(results))
	what := fmt.Sprintf("%s in %s against %s", plural(len(in.objects), "object"), plural(in.files, "file"), plural(in.policies, "policy"))
	if len(results) == 0 {
		fmt.Fprintf(w, "No loopback-only port is exposed: %s.\n", what)
		return
	}
	verdict := "passed"
	if c.deny > 0 {
		verdict = "failed"
	}
	fmt.Fprintf(w, "%s (%d Deny, %d Warn, %d Audit): %s; check %s.\n", plural(len(results), "finding"), c.deny, c.warn, c.audit, what, verdict)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// sortErrors orders errors by line within each file, keeping the files in
// the order they were read.
func sortErrors(errs inputErrors) {
	order := map[string]int{}
	for _, e := range errs {
		if _, ok := order[e.file]; !ok {
			order[e.file] = len(order)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.file != b.file {
			return order[a.file] < order[b.file]
		}
		return a.line < b.line
	})
}
