package cli

import (
	"strings"

	"github.com/loopguard/loopguard/internal/kinds"
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
	names := judgedKindNames()
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
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
