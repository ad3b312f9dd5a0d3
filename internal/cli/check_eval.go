package cli

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// evaluateInput fills one snapshot per namespace with the judged objects
// of the input there, with the policies that may apply and the
// namespace's labels, and audits each (rules.Audit); EndpointSlices and
// Endpoints are resolved against the Pods of every namespace. Results
// keep the input order.
func evaluateInput(in *checkInput) []checkResult {
	clusterSet := rules.NewSet(in.clusterPolicies)
	snaps := map[string]*rules.Snapshot{}
	var namespaces []string
	// Pods are judged as podview.Pods, converted once here; files maps
	// each back to the file's pod, whose findings check reports.
	var pods []*podview.Pod
	files := map[*podview.Pod]*corev1.Pod{}
	for _, o := range in.objects {
		s := snaps[o.namespace]
		if s == nil {
			s = &rules.Snapshot{Env: rules.NewEnv(o.namespace, rules.NamespaceLabels(o.namespace, in.nsLabels[o.namespace]),
				rules.NewSet(in.nsPolicies[o.namespace]), clusterSet)}
			snaps[o.namespace] = s
			namespaces = append(namespaces, o.namespace)
		}
		obj := o.obj
		if p, ok := obj.(*corev1.Pod); ok {
			v := podview.Of(p)
			files[v] = p
			pods = append(pods, v)
			obj = v
		}
		s.Add(obj)
	}
	// Endpoints are resolved to the pods of every file given, in any
	// namespace, each judged by its namespace's policies.
	resolver := rules.NewResolver(pods, func(ns string) *rules.Env {
		if s := snaps[ns]; s != nil {
			return s.Env
		}
		return rules.NewEnv(ns, rules.NamespaceLabels(ns, in.nsLabels[ns]), rules.NewSet(in.nsPolicies[ns]), clusterSet)
	})
	findings := map[runtime.Object][]rules.Finding{}
	for _, ns := range namespaces {
		snaps[ns].Resolver = resolver
		rep := rules.Audit(*snaps[ns])
		for _, j := range rep.Judged {
			if v, ok := j.Object.(*podview.Pod); ok {
				findings[files[v]] = ofFilePod(files[v], j.Findings)
				continue
			}
			findings[j.Object] = j.Findings
		}
	}
	var out []checkResult
	for _, o := range in.objects {
		for _, f := range findings[o.obj] {
			out = append(out, checkResult{file: o.doc.file, line: locate(o.doc.node, f.Field), finding: f, object: o})
		}
	}
	return out
}

// ofFilePod names the file's pod p in the findings about its podview.Pod,
// which has no generateName: a pod with only metadata.generateName is
// "<generateName>*", as the webhook names it.
func ofFilePod(p *corev1.Pod, fs []rules.Finding) []rules.Finding {
	t, _ := rules.PodTemplateOf(p)
	out := make([]rules.Finding, len(fs))
	for i, f := range fs {
		f.Object = t.Object
		out[i] = f
	}
	return out
}
