package cli

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// read lists what the rules need, in the scope, keeping the namespaces
// where a policy applies.
func (st *clusterState) read(ctx context.Context, c client.Reader, scope []client.ListOption, envs map[string]*rules.Env, prog *progress) error {
	st.pods = map[string][]*podview.Pod{}
	st.services = map[string][]*corev1.Service{}
	st.netpols = map[string][]*networkingv1.NetworkPolicy{}
	st.workloads = map[string][]runtime.Object{}
	// The controller's cache transform: audit judges pods as it does.
	toView := podview.NewTransform()
	keep := func(o runtime.Object) (string, bool) {
		ns := o.(metav1.Object).GetNamespace()
		if p, ok := o.(*podview.Pod); ok {
			if p.TrimmedSpec.HostNetwork && p.DeletionTimestamp == nil {
				// Every hostNetwork pod read, for the node-mates of the
				// audited ones.
				st.hostPods = append(st.hostPods, p)
			}
			st.collectRiskyPod(p)
		}
		_, ok := envs[ns]
		return ns, ok
	}
	lists := []struct {
		name string
		new  func() client.ObjectList
		add  func(ns string, o runtime.Object)
	}{
		{"pods", func() client.ObjectList { return &corev1.PodList{} }, func(ns string, o runtime.Object) {
			if p := o.(*podview.Pod); p.DeletionTimestamp == nil {
				st.pods[ns] = append(st.pods[ns], p)
			}
		}},
		{"services", func() client.ObjectList { return &corev1.ServiceList{} }, func(ns string, o runtime.Object) {
			st.services[ns] = append(st.services[ns], o.(*corev1.Service))
		}},
		{"networkpolicies", func() client.ObjectList { return &networkingv1.NetworkPolicyList{} }, func(ns string, o runtime.Object) {
			st.netpols[ns] = append(st.netpols[ns], o.(*networkingv1.NetworkPolicy))
		}},
	}
	for _, k := range kinds.Workloads() {
		lists = append(lists, struct {
			name string
			new  func() client.ObjectList
			add  func(ns string, o runtime.Object)
		}{k.Resource, k.NewList, func(ns string, o runtime.Object) {
			st.workloads[ns] = append(st.workloads[ns], o)
		}})
	}
	for _, l := range lists {
		prog.Set("listing %s", l.name)
		items, err := listAll(ctx, c, l.new, scope...)
		if err != nil {
			return fmt.Errorf("failed to list %s: %w", l.name, err)
		}
		for _, o := range items {
			if _, ok := o.(*corev1.Pod); ok {
				v, err := toView(o)
				if err != nil {
					return fmt.Errorf("failed to convert pod: %w", err)
				}
				o = v.(*podview.Pod)
			}
			if ns, ok := keep(o); ok {
				l.add(ns, o)
			}
		}
	}
	return st.readEndpointSlices(ctx, c, scope, prog)
}

// listPageSize bounds each list call; big clusters are read in pages.
const listPageSize = 500

// listAll lists every object, page by page.
func listAll(ctx context.Context, c client.Reader, newList func() client.ObjectList, opts ...client.ListOption) ([]runtime.Object, error) {
	var out []runtime.Object
	cont := ""
	for {
		l := newList()
		o := append(append([]client.ListOption{}, opts...), client.Limit(listPageSize), client.Continue(cont))
		if err := c.List(ctx, l, o...); err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if cont = l.GetContinue(); cont == "" {
			return out, nil
		}
	}
}
