package main

import (
	"context"
	"fmt"
	"strings"
	"time"

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

func (v *vapEngine) Name() string                { return "vap" }
func (v *vapEngine) PID() int                    { return 0 }
func (v *vapEngine) Start(context.Context) error { return nil }
func (v *vapEngine) Kill(context.Context) error  { return nil }
func (v *vapEngine) RemoveCasePolicies(ctx context.Context) error {
	_, err := v.e.kubectlRun(ctx, nil, "delete", "--ignore-not-found", "validatingadmissionpolicybinding/cart-loopback", "validatingadmissionpolicy/cart-loopback")
	return err
}

func (v *vapEngine) InstallCasePolicies(ctx context.Context) error {
	b, err := v.e.policyFile("vap", "policy.yaml")
	if err != nil {
		return err
	}
	return v.e.applyRetry(ctx, b, time.Minute)
}

// SetBenchPolicies creates n copies of the case policy, each protecting one
// port, each with its binding to the bench namespace.
func (v *vapEngine) SetBenchPolicies(ctx context.Context, n int) error {
	b, err := v.e.policyFile("vap", "policy.yaml")
	if err != nil {
		return err
	}
	docs, err := splitYAML(b)
	if err != nil {
		return err
	}
	var policy, binding map[string]any
	for _, d := range docs {
		switch d["kind"] {
		case "ValidatingAdmissionPolicy":
			policy = d
		case "ValidatingAdmissionPolicyBinding":
			binding = d
		}
	}
	if policy == nil || binding == nil {
		return fmt.Errorf("bench/peers/policies/vap/policy.yaml: want a policy and a binding")
	}
	err = setNumbered(ctx, v.e, vapGVR, "", n, func(i int) *unstructured.Unstructured {
		o := deepCopyMap(policy)
		o["metadata"] = map[string]any{"name": fmt.Sprintf("bench-%04d", i)}
		for _, x := range o["spec"].(map[string]any)["variables"].([]any) {
			vm := x.(map[string]any)
			if vm["name"] == "ports" {
				p := benchPort(i)
				vm["expression"] = fmt.Sprintf("[{'port': dyn(%d), 'endPort': dyn(%d), 'protocol': dyn('TCP'), 'name': dyn('')}]", p, p)
			}
		}
		return &unstructured.Unstructured{Object: o}
	})
	if err != nil {
		return err
	}
	return setNumbered(ctx, v.e, vapBindingGVR, "", n, func(i int) *unstructured.Unstructured {
		o := deepCopyMap(binding)
		name := fmt.Sprintf("bench-%04d", i)
		o["metadata"] = map[string]any{"name": name}
		o["spec"].(map[string]any)["policyName"] = name
		return &unstructured.Unstructured{Object: o}
	})
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
