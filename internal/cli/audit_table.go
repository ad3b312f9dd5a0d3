package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/loopguard/loopguard/internal/rules"
)

// shortPolicy renders a policy as kubectl names it: lbs/envoy-admin,
// clbs/agent-admin.
func shortPolicy(p reportPolicy) string {
	if p.Kind == rules.KindClusterLoopbackService {
		return "clbs/" + p.Name
	}
	return "lbs/" + p.Name
}

func shortPolicies(ps []reportPolicy) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = shortPolicy(p)
	}
	return strings.Join(out, ",")
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// abbreviate joins at most n items: "a,b,c and 4 more".
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ","), len(items)-n)
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// writeAuditTable prints kubectl-style tables: findings, then NetworkPolicy
// conflicts and hostNetwork pods when there are any, then a summary.
func writeAuditTable(out io.Writer, rep *auditReport, namespace string, wide bool) error {
	where := "namespace " + namespace
	if namespace == "" {
		where = "any namespace"
	}
	s := rep.Summary
	if s.Namespaces == 0 {
		_, err := fmt.Fprintf(out, "No LoopbackService or ClusterLoopbackService applies in %s: nothing to audit.\n", where)
		return err
	}
	// table prints one section with its own column widths.
	table := func(title, header string, rows [][]string) error {
		if len(rows) == 0 {
			return nil
		}
		if title != "" {
			fmt.Fprintf(out, "\n%s\n", title)
		}
		w := printers.GetNewTabWriter(out)
		fmt.Fprintln(w, header)
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		}
		return w.Flush()
	}
	var rows [][]string
	for _, f := range rep.Findings {
		port := "*"
		if f.Port != 0 {
			port = strconv.Itoa(int(f.Port)) + "/" + f.Protocol
		}
		row := []string{shortPolicies(f.Policies), f.Object.Kind, nsName(f.Object.Namespace, f.Object.Name), f.Field, port, f.Action, f.Reason}
		if wide {
			row = append(row, f.Message)
		}
		rows = append(rows, row)
	}
	header := "POLICY\tKIND\tOBJECT\tFIELD\tPORT\tACTION\tREASON"
	if wide {
		header += "\tMESSAGE"
	}
	if err := table("", header, rows); err != nil {
		return err
	}
	rows = nil
	for _, c := range rep.Conflicts {
		rows = append(rows, []string{shortPolicy(c.Policy), nsName(c.Namespace, c.NetworkPolicy), fmt.Sprintf("spec.ingress[%d]", c.Rule), c.Ports, c.Reason})
	}
	if err := table("NetworkPolicies that re-open protected ports (allow-lists are unions, so they defeat loopguard's):",
		"POLICY\tNETWORKPOLICY\tRULE\tPORTS\tREASON", rows); err != nil {
		return err
	}
	rows = nil
	for _, h := range rep.HostNetworkPods {
		var ps []string
		for _, p := range h.Policies {
			ps = append(ps, shortPolicy(p.reportPolicy))
		}
		rows = append(rows, []string{nsName(h.Namespace, h.Name), orNone(h.Node), strings.Join(ps, ","),
			orNone(strings.Join(h.ProtectedPorts, ",")), orNone(abbreviate(h.NodeMates, 3))})
	}
	if err := table("hostNetwork pods a policy selects (they share the node's loopback; NetworkPolicy does not apply):",
		"POD\tNODE\tPOLICIES\tPROTECTED PORTS\tSHARES LOOPBACK WITH", rows); err != nil {
		return err
	}
	if err := table("Pods that can enter the network namespace of protected pods on their node (and reach their loopback):",
		"POD\tNODE\tPOLICIES\tPROTECTED PODS\tHOW", nodeMateRows(rep)); err != nil {
		return err
	}
	if rt := rep.Runtime; rt != nil {
		if err := table("Protected ports listening beyond loopback, as the node agents saw them (NodeBindReports):",
			"POLICY\tPOD\tNODE\tCONTAINER\tPROCESS\tLISTENING ON\tACTION", runtimeRows(rt)); err != nil {
			return err
		}
		if len(rt.StaleNodes) > 0 {
			fmt.Fprintf(out, "\n%s not checked at runtime: no fresh NodeBindReport from %s.\n",
				plural(rt.PodsUnchecked, "pod"), abbreviate(rt.StaleNodes, 5))
		}
	}
	scope := where
	if namespace == "" {
		scope = plural(s.Namespaces, "namespace")
	}
	scope = fmt.Sprintf("%s in %s against %s", plural(s.Objects, "object"), scope, plural(s.Policies, "policy"))
	if rt := rep.Runtime; rt != nil {
		scope += fmt.Sprintf("; %s checked at runtime", plural(rt.PodsChecked, "pod"))
	}
	if s.Findings+s.Conflicts+s.HostNetworkPods+s.NodeMates+s.RuntimeListeners == 0 {
		_, err := fmt.Fprintf(out, "No loopback-only port is exposed: %s.\n", scope)
		return err
	}
	runtime := ""
	if rep.Runtime != nil {
		runtime = fmt.Sprintf(", %s listening beyond loopback", plural(s.RuntimeListeners, "port"))
	}
	if s.NodeMates > 0 {
		runtime = ", " + plural(s.NodeMates, "node-mate") + runtime
	}
	_, err := fmt.Fprintf(out, "\n%s (%d Deny, %d Warn, %d Audit), %s, %s%s: %s.\n",
		plural(s.Findings, "finding"), s.Deny, s.Warn, s.Audit,
		plural(s.Conflicts, "NetworkPolicy conflict"), plural(s.HostNetworkPods, "hostNetwork pod"), runtime, scope)
	return err
}
