package cli

import (
	"strings"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/rules"
)

// judgedKindNames are the kinds the rules judge, in the kinds table's
// order (pods, Services, workloads, endpoints).
func judgedKindNames() []string {
	out := make([]string, len(kinds.All))
	for i, k := range kinds.All {
		out[i] = k.GVK.Kind
	}
	return out
}

// judgedKindsText lists them for help texts: "Pod, Service, ... and
// Endpoints".
func judgedKindsText() string {
	return joinWords(judgedKindNames(), "and")
}

// joinWords joins "a, b and c".
func joinWords(words []string, conj string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// judgedKindByName finds a judged kind by its name or plural resource,
// case-insensitively: Deployment, deployment, deployments.
func judgedKindByName(s string) *kinds.Kind {
	for i := range kinds.All {
		k := &kinds.All[i]
		if strings.EqualFold(k.GVK.Kind, s) || strings.EqualFold(k.Resource, s) {
			return k
		}
	}
	return nil
}

// checkIntroHelp is the first paragraph of check --help, made from the
// kinds table and the engine's reasons so that it lists them all.
func checkIntroHelp() string {
	return wrapWords("check evaluates every "+judgedKindsText()+" of the input against the "+
		"LoopbackService and ClusterLoopbackService objects of the input and of "+
		"--policies, with the rules the admission webhook runs. Each finding has one "+
		"of the reasons "+joinWords(rules.ObjectReasons, "or")+" (docs/cli.md explains them).", 76)
}

// wrapWords breaks text into lines of at most width characters, between
// words.
func wrapWords(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		switch {
		case n == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
