package main

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	vapGVR        = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapBindingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
)

// vapEngine is the API server's own ValidatingAdmissionPolicy: nothing to
// start, nothing to kill.
type vapEngine struct{ e *env }

func (v *vapEngine) Name() string { return "vap" }
func (v *vapEngine) PID() int     { return 0 }

// Aux is the API server, where the policies run.
func (v *vapEngine) Aux() map[string]int         { return map[string]int{"kube-apiserver": v.e.apiServerPID()} }
func (v *vapEngine) Start(context.Context) error { return nil }
func (v *vapEngine) Kill(context.Context) error  { return nil }

// vapFiles are the VAP policy files: the object-only policy, the race
// policies (params: the request namespace's Pods or Services) and the
// access policy (CONNECT; the API server may refuse it).
var vapFiles = []string{"policy.yaml", "race.yaml", "access.yaml"}

func (v *vapEngine) RemoveCasePolicies(ctx context.Context) error {
	for _, f := range vapFiles {
		b, err := v.e.policyFile("vap", f)
		if err != nil {
			return err
		}
		v.e.deleteYAML(ctx, b)
	}
	return nil
}

// InstallCasePolicies applies every VAP file; a file the API server
// refuses is recorded with the API server's answer (the report shows it)
// and the run goes on without it.
func (v *vapEngine) InstallCasePolicies(ctx context.Context) error {
	for _, f := range vapFiles {
		b, err := v.e.policyFile("vap", f)
		if err != nil {
			return err
		}
		if err := v.e.apply(ctx, b); err != nil {
			if f == "policy.yaml" {
				return err
			}
			v.e.note("vap", "the API server refused bench/peers/policies/vap/%s: %s", f, oneLine(err.Error()))
		}
	}
	return nil
}

// SetBenchPolicies creates n copies of every policy that has a ports
// variable (the object-only policy and both race policies), each protecting
// one port, each with its binding to the bench namespace ns.
func (v *vapEngine) SetBenchPolicies(ctx context.Context, ns string, n int) error {
	type pair struct{ policy, binding map[string]any }
	var pairs []pair
	for _, f := range vapFiles {
		b, err := v.e.policyFile("vap", f)
		if err != nil {
			return err
		}
		docs, err := splitYAML(b)
		if err != nil {
			return err
		}
		bindings := map[string]map[string]any{}
		for _, d := range docs {
			if d["kind"] == "ValidatingAdmissionPolicyBinding" {
				bindings[d["spec"].(map[string]any)["policyName"].(string)] = d
			}
		}
		for _, d := range docs {
			if d["kind"] != "ValidatingAdmissionPolicy" || !hasPortsVariable(d) {
				continue
			}
			name := d["metadata"].(map[string]any)["name"].(string)
			if bindings[name] == nil {
				return fmt.Errorf("bench/peers/policies/vap/%s: policy %s has no binding", f, name)
			}
			pairs = append(pairs, pair{d, bindings[name]})
		}
	}
	for k, p := range pairs {
		prefix := fmt.Sprintf("bench-%d-", k)
		err := setNumbered(ctx, v.e, vapGVR, "", prefix, n, func(i int) *unstructured.Unstructured {
			o := deepCopyMap(p.policy)
			o["metadata"] = map[string]any{"name": fmt.Sprintf("%s%04d", prefix, i)}
			setPortsVariable(o, benchPort(i))
			return &unstructured.Unstructured{Object: o}
		})
		if err != nil {
			return err
		}
		err = setNumbered(ctx, v.e, vapBindingGVR, "", prefix, n, func(i int) *unstructured.Unstructured {
			o := deepCopyMap(p.binding)
			name := fmt.Sprintf("%s%04d", prefix, i)
			o["metadata"] = map[string]any{"name": name}
			spec := o["spec"].(map[string]any)
			spec["policyName"] = name
			spec["matchResources"] = map[string]any{"namespaceSelector": map[string]any{
				"matchLabels": map[string]any{"kubernetes.io/metadata.name": ns}}}
			return &unstructured.Unstructured{Object: o}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func hasPortsVariable(policy map[string]any) bool {
	vars, _ := policy["spec"].(map[string]any)["variables"].([]any)
	for _, x := range vars {
		if x.(map[string]any)["name"] == "ports" {
			return true
		}
	}
	return false
}

// setPortsVariable makes a CEL policy (VAP or Kyverno ValidatingPolicy)
// protect exactly one TCP port.
func setPortsVariable(policy map[string]any, port int) {
	vars, _ := policy["spec"].(map[string]any)["variables"].([]any)
	for _, x := range vars {
		vm := x.(map[string]any)
		if vm["name"] == "ports" {
			vm["expression"] = fmt.Sprintf("[{'port': dyn(%d), 'endPort': dyn(%d), 'protocol': dyn('TCP'), 'name': dyn('')}]", port, port)
		}
	}
}

func (v *vapEngine) Stop(ctx context.Context) {
	_ = v.RemoveCasePolicies(ctx)
	for _, r := range []string{"validatingadmissionpolicybindings", "validatingadmissionpolicies"} {
		out, _ := v.e.kubectlRun(ctx, nil, "get", r, "-o", "name")
		var names []string
		for _, n := range strings.Fields(out) {
			if strings.Contains(n, "/bench-") {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			_, _ = v.e.kubectlRun(ctx, nil, append([]string{"delete", "--ignore-not-found", "--wait=false"}, names...)...)
		}
	}
}
