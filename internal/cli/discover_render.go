package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/loopguard/loopguard/internal/discover"
)

// renderDiscover prints the proposals as YAML that kubectl apply takes,
// everything else as comments.
func renderDiscover(w io.Writer, namespace string, res discover.Result, reports int) {
	scope := "every namespace"
	if namespace != "" {
		scope = "namespace " + namespace
	}
	fmt.Fprintf(w, "# loopguard discover: %s, from %d node report(s)\n", scope, reports)
	for _, n := range res.NoDiscovery {
		fmt.Fprintf(w, "# node %s: its agent runs without --discovery (agent.discovery.enabled): nothing seen there\n", n)
	}
	for _, n := range res.Truncated {
		fmt.Fprintf(w, "# node %s: its discovery was cut at the report's bounds: some listeners are missing\n", n)
	}
	if reports == 0 {
		fmt.Fprintln(w, "# no NodeBindReport: no node agent runs (config/agent; the chart's agent.enabled)")
	}
	n := 0
	for _, p := range res.Proposals {
		if len(p.Selector) == 0 {
			fmt.Fprintf(w, "#\n# %s listens on loopback only on %s, but its pods carry no label to select them by: label them, then run discover again\n",
				p.Workload, portList(p.Ports))
			continue
		}
		fmt.Fprintln(w, "---")
		renderProposal(w, p)
		n++
	}
	if n == 0 {
		fmt.Fprintln(w, "# nothing to propose: no unprotected port listens on loopback only")
	}
	if len(res.Wildcards) > 0 {
		fmt.Fprintln(w, "#\n# Listening on every address, declared by no Service and no containerPort")
		fmt.Fprintln(w, "# (bind them to 127.0.0.1 if only the pod uses them, or declare them):")
		for _, wc := range res.Wildcards {
			fmt.Fprintf(w, "#   %s: %s %s port %d (%s) in %s\n", wc.Workload, wc.Protocol, wc.Address, wc.Port,
				strings.Join(wc.Processes, ", "), plural(len(wc.Pods), "pod"))
		}
	}
}

func renderProposal(w io.Writer, p discover.Proposal) {
	fmt.Fprintf(w, "# %s: loopback-only listeners seen in %s (%s)\n", p.Workload, plural(len(p.Pods), "pod"), strings.Join(p.Pods, ", "))
	if len(p.Others) > 0 {
		fmt.Fprintf(w, "# note: the selector also selects %s of other workloads (%s); narrow it if they do not listen there\n",
			plural(len(p.Others), "pod"), strings.Join(p.Others, ", "))
	}
	fmt.Fprintf(w, "apiVersion: loopguard.io/v1alpha1\nkind: LoopbackService\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n",
		scalarYAML(p.Name), scalarYAML(p.Workload.Namespace))
	fmt.Fprintln(w, "  podSelector:\n    matchLabels:")
	keys := make([]string, 0, len(p.Selector))
	for k := range p.Selector {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "      %s: %s\n", scalarYAML(k), scalarYAML(p.Selector[k]))
	}
	fmt.Fprintln(w, "  enforcementAction: Audit")
	// portForward alone defaults to a refusal (Deny): a proposal must change
	// nothing before the team has read it.
	fmt.Fprintln(w, "  portForward: # Deny by default; Audit records each session instead")
	fmt.Fprintln(w, "    action: Audit")
	fmt.Fprintln(w, "  ports:")
	for _, port := range p.Ports {
		fmt.Fprintf(w, "  - port: %d", port.From)
		if len(port.Processes) > 0 {
			fmt.Fprintf(w, " # %s", strings.Join(port.Processes, ", "))
		}
		fmt.Fprintln(w)
		if port.To != port.From {
			fmt.Fprintf(w, "    endPort: %d\n", port.To)
		}
		fmt.Fprintf(w, "    protocol: %s\n", port.Protocol)
	}
}

func portList(ports []discover.Port) string {
	var out []string
	for _, p := range ports {
		s := fmt.Sprintf("%d", p.From)
		if p.To != p.From {
			s += fmt.Sprintf("-%d", p.To)
		}
		out = append(out, s+"/"+string(p.Protocol))
	}
	return strings.Join(out, ", ")
}

// scalarYAML renders a string as a YAML scalar, quoted when it must be.
func scalarYAML(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSpace(string(b))
}
