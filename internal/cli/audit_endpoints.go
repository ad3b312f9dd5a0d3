package cli

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// readEndpointSlices lists the EndpointSlices of every namespace, even
// when the audit is scoped to one: a slice anywhere may list the audited
// pods' IPs (CVE-2021-25740). Without the right to list them cluster-wide,
// those of the scope only, with a warning.
func (st *clusterState) readEndpointSlices(ctx context.Context, c client.Reader, scope []client.ListOption, prog *progress) error {
	prog.Set("listing endpointslices")
	newList := func() client.ObjectList { return &discoveryv1.EndpointSliceList{} }
	items, err := listAll(ctx, c, newList)
	if apierrors.IsForbidden(err) && len(scope) > 0 {
		st.warnings = append(st.warnings, "cannot list EndpointSlices in every namespace (forbidden): a slice of another namespace that lists the audited pods is not audited")
		items, err = listAll(ctx, c, newList, scope...)
	}
	if apierrors.IsForbidden(err) {
		// Newer than the rest of what the audit reads: a role written for
		// an earlier loopguard may lack it.
		st.warnings = append(st.warnings, "cannot list EndpointSlices (forbidden): hand-written endpoints are not audited")
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to list endpointslices: %w", err)
	}
	services := map[client.ObjectKey]*corev1.Service{}
	for _, svcs := range st.services {
		for _, svc := range svcs {
			services[client.ObjectKeyFromObject(svc)] = svc
		}
	}
	for _, o := range items {
		s := o.(*discoveryv1.EndpointSlice)
		// The EndpointSlice controller's slices are their Services'
		// findings. A Service the audit did not read is in a namespace
		// where no policy applies: its slice, judged, finds nothing.
		svc := services[client.ObjectKey{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}]
		if !rules.ControllerWrittenSlice(s, svc) {
			st.endpointSlices = append(st.endpointSlices, s)
		}
	}
	return nil
}

// judgeEndpoints judges every hand-written slice, in whatever namespace,
// against the pods the audit read and the policies of their namespaces
// (rules.Audit of the slices, with a resolver over every pod read).
func (st *clusterState) judgeEndpoints(envs map[string]*rules.Env, rep *auditReport) {
	var pods []*podview.Pod
	for _, ps := range st.pods {
		pods = append(pods, ps...)
	}
	res := rules.Audit(rules.Snapshot{EndpointSlices: st.endpointSlices,
		Resolver: rules.NewResolver(pods, func(ns string) *rules.Env { return envs[ns] })})
	var findings []rules.Finding
	for _, j := range res.Judged {
		// Counted with the audited namespaces' objects: those of the
		// audited namespaces, and those of others that reach their pods.
		if envs[j.Object.(*discoveryv1.EndpointSlice).Namespace] != nil || len(j.Findings) > 0 {
			rep.Summary.Objects++
		}
		findings = append(findings, j.Findings...)
	}
	sortFindings(findings, func(f rules.Finding) string { return f.Object.Namespace })
	for _, f := range findings {
		rep.Findings = append(rep.Findings, newReportFinding(f))
	}
}
