package main

import (
	"regexp"
	"slices"
	"strings"
)

// nameOverride and fullnameOverride: every name config/ gives an object
// of the manager (loopguard-<suffix>) becomes {{ include "loopguard.fullname" $ }}-<suffix>
// wherever a template mentions it (the object, the references to it, the
// manager's flags, NOTES), so that the names stay consistent. The agent's
// own objects keep their names: they live in agent.namespace.
const fullnameExpr = `{{ include "loopguard.fullname" $ }}-`

// fullnameRE matches the names of objs (not Namespaces, not CRDs), longest
// first, as whole names.
func fullnameRE(objs ...[]object) *regexp.Regexp {
	set := map[string]bool{}
	// The chart's own objects.
	for _, n := range []string{clientAuthConfigMap, metricsCertSecret, namePrefix + "metrics-cert"} {
		set[regexp.QuoteMeta(n)] = true
	}
	for _, list := range objs {
		for _, o := range list {
			if o.kind != "Namespace" && o.kind != "CustomResourceDefinition" && strings.HasPrefix(o.name, namePrefix) {
				set[regexp.QuoteMeta(o.name)] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b([^-a-z0-9]|$)`)
}

// applyFullname rewrites the names in every template but the CRDs and the
// helpers.
func applyFullname(c *chart, re *regexp.Regexp) {
	for name, text := range c.files {
		if !strings.HasPrefix(name, "templates/") || strings.Contains(name, "customresourcedefinition-") || name == "templates/_helpers.tpl" {
			continue
		}
		c.files[name] = re.ReplaceAllStringFunc(text, func(m string) string {
			return fullnameExpr + strings.TrimPrefix(m, namePrefix)
		})
	}
}
