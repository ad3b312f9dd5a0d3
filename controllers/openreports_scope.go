package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/kinds"
	"github.com/loopguard/loopguard/internal/openreport"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// reportScope is one reconcile of one namespace's OpenReports Report: the
// policies that apply there, then the results each phase adds.
type reportScope struct {
	log       logr.Logger
	namespace string
	labels    labels.Set
	policies  []reportPolicy
	results   []openreportsv1alpha1.ReportResult
}

// reportPolicy is one policy that applies in the namespace: compiled, with
// the status its runtime and node-mate findings are read from (the runtime
// and policy controllers keep them), and the pods it selects here (set by
// the audit phase).
type reportPolicy struct {
	compiled *rules.Policy
	status   *v1alpha1.LoopbackServiceStatus
	selected []*podview.Pod
}

// reportPhase is one step of a report reconcile.
type reportPhase struct {
	what string
	run  func(context.Context, *reportScope) error
}

func runReportPhases(ctx context.Context, s *reportScope, phases []reportPhase) error {
	for _, ph := range phases {
		if err := ph.run(ctx, s); err != nil {
			return fmt.Errorf("failed to %s: %w", ph.what, err)
		}
	}
	return nil
}

// add classifies one finding (openreport.Classify decides its rule, result
// and severity) and adds its result.
func (s *reportScope) add(reason string, status openreport.Status, action v1alpha1.EnforcementAction, p *rules.Policy, subject corev1.ObjectReference, msg string, props map[string]string) error {
	c, err := openreport.Classify(reason, status, action)
	if err != nil {
		return fmt.Errorf("policy %s: %w", p.Ref, err)
	}
	if props == nil {
		props = map[string]string{}
	}
	props["reason"] = reason
	s.results = append(s.results, openreport.NewResult(c, p.Ref, subject, msg, props))
	return nil
}

// gatherReportPolicies is the policies phase: the namespace's
// LoopbackServices and the ClusterLoopbackServices selecting it, from the
// cache. A namespace that is gone or terminating has none: its Report goes.
func gatherReportPolicies(reader client.Reader, index *policyindex.Index) func(context.Context, *reportScope) error {
	return func(ctx context.Context, s *reportScope) error {
		ns := &corev1.Namespace{}
		if err := reader.Get(ctx, client.ObjectKey{Name: s.namespace}, ns); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("failed to get namespace %s: %w", s.namespace, err)
		}
		if !ns.DeletionTimestamp.IsZero() {
			return nil
		}
		s.labels = labels.Set(ns.Labels)
		pc := newPolicyCompiler(reader, index, s.namespace)
		var lbss v1alpha1.LoopbackServiceList
		if err := reader.List(ctx, &lbss, client.InNamespace(s.namespace)); err != nil {
			return fmt.Errorf("failed to list LoopbackServices: %w", err)
		}
		for i := range lbss.Items {
			if p := pc.lbs(&lbss.Items[i]); p != nil {
				s.policies = append(s.policies, reportPolicy{compiled: p, status: &lbss.Items[i].Status})
			}
		}
		var clbss v1alpha1.ClusterLoopbackServiceList
		if err := reader.List(ctx, &clbss); err != nil {
			return fmt.Errorf("failed to list ClusterLoopbackServices: %w", err)
		}
		for i := range clbss.Items {
			if p := pc.clbs(&clbss.Items[i]); p != nil && p.AppliesToNamespace(s.namespace, s.labels) {
				s.policies = append(s.policies, reportPolicy{compiled: p, status: &clbss.Items[i].Status})
			}
		}
		return nil
	}
}

// auditReport is the audit phase: each policy's audit of the namespace
// (observe, the rules the webhook uses). Every finding is a result; every
// protected pod or workload passes the pod rules it has no finding for;
// every NetworkPolicy that re-opens a protected port is a result. An
// audit that cannot run is an error result for each rule it judges.
func auditReport(reader client.Reader) func(context.Context, *reportScope) error {
	return func(ctx context.Context, s *reportScope) error {
		nsRef := corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: s.namespace}
		for i := range s.policies {
			rp := &s.policies[i]
			p := rp.compiled
			obs, err := observe(ctx, reader, p, s.namespace, s.labels)
			if err != nil {
				s.log.Error(err, "failed to audit the namespace for its report", "policy", p.Ref.String())
				for _, reason := range openreport.AuditReasons {
					msg := fmt.Sprintf("namespace %s could not be audited against %s: %v", s.namespace, p.Ref, err)
					if err := s.add(reason, openreport.NotChecked, p.Action, p, nsRef, msg, nil); err != nil {
						return err
					}
				}
				continue
			}
			rp.selected = obs.matched
			for _, j := range obs.judged {
				if err := s.addJudged(p, j); err != nil {
					return err
				}
			}
			for _, c := range obs.conflicts {
				subject := corev1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: s.namespace, Name: c.Name}
				msg := fmt.Sprintf("networkpolicy %q re-opens %s that %s protects: spec.ingress[%d] %s", c.Name, c.Port, p.Ref, c.Rule, c.Reason)
				props := map[string]string{"field": fmt.Sprintf("spec.ingress[%d]", c.Rule), "port": c.Port.String()}
				if err := s.add(openreport.ReasonNetworkPolicyConflict, openreport.Violation, p.Action, p, subject, msg, props); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// addJudged adds one judged object's results under one policy.
func (s *reportScope) addJudged(p *rules.Policy, j rules.Judged) error {
	subject, ok := objectReference(j.Object)
	if !ok {
		return nil
	}
	failed := map[string]bool{}
	for _, f := range j.Findings {
		failed[f.Reason] = true
		props := map[string]string{
			"field": f.Field, "container": f.Container, "protocol": string(f.Protocol), "action": string(f.Action),
		}
		if f.Port != 0 {
			props["port"] = strconv.Itoa(int(f.Port))
		}
		if err := s.add(f.Reason, openreport.Violation, f.Action, p, subject, f.Message(), props); err != nil {
			return err
		}
	}
	tmpl, ok := rules.PodTemplateOf(j.Object)
	if !ok || !p.Selector.Matches(labels.Set(tmpl.Labels)) {
		return nil // not a protected pod or workload
	}
	for _, reason := range openreport.PodReasons {
		if failed[reason] {
			continue
		}
		c, err := openreport.Classify(reason, openreport.Compliant, p.Action)
		if err != nil {
			return fmt.Errorf("policy %s: %w", p.Ref, err)
		}
		msg := fmt.Sprintf("%s %q passes rule %s of %s", strings.ToLower(subject.Kind), subject.Name, c.Rule, p.Ref)
		if err := s.add(reason, openreport.Compliant, p.Action, p, subject, msg, nil); err != nil {
			return err
		}
	}
	return nil
}

// objectReference names a judged object by its kind in the table of kinds.
func objectReference(o runtime.Object) (corev1.ObjectReference, bool) {
	k, ok := kinds.Of(o)
	if !ok {
		return corev1.ObjectReference{}, false
	}
	m, err := meta.Accessor(o)
	if err != nil {
		return corev1.ObjectReference{}, false
	}
	apiVersion, kind := k.GVK.ToAPIVersionAndKind()
	return corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID()}, true
}

// runtimeReport is the runtime phase: what the node agents observed and
// the runtime controller put in each policy's status (listeners beyond
// loopback, unexpected clients of protected ports (rule
// unexpected-client), and the selected pods on nodes whose agent report is stale,
// which could not be checked), and the node-mates the policy controller
// found, for the pods of this namespace.
func runtimeReport(_ context.Context, s *reportScope) error {
	for _, rp := range s.policies {
		p, st := rp.compiled, rp.status
		if rt := st.Runtime; rt != nil {
			for _, l := range rt.Listeners {
				if l.Namespace != s.namespace {
					continue
				}
				props := map[string]string{"node": l.Node, "container": l.Container, "process": l.Process,
					"address": l.Address, "port": strconv.Itoa(int(l.Port)), "protocol": string(l.Protocol)}
				if err := s.add(v1alpha1.ReasonListeningBeyondLoopback, openreport.Violation, p.Action, p, podRef(s.namespace, l.Pod), describeListener(l), props); err != nil {
					return err
				}
			}
			for _, c := range rt.UnexpectedClients {
				if c.Namespace != s.namespace {
					continue
				}
				props := map[string]string{"node": c.Node, "container": c.Container, "process": c.Process,
					"port": strconv.Itoa(int(c.Port)), "field": c.Field, "outside": strconv.FormatBool(c.Outside)}
				if err := s.add(v1alpha1.ReasonUnexpectedClient, openreport.Violation, p.Action, p, podRef(s.namespace, c.Pod), describeClient(c), props); err != nil {
					return err
				}
			}
			for _, pod := range rp.selected {
				if pod.NodeName == "" || !slices.Contains(rt.StaleNodes, pod.NodeName) {
					continue
				}
				msg := fmt.Sprintf("pod %q on node %s was not checked: the node's agent report is stale, so whether it listens on a port %s protects beyond loopback is unknown", pod.Name, pod.NodeName, p.Ref)
				if err := s.add(v1alpha1.ReasonListeningBeyondLoopback, openreport.NotChecked, p.Action, p, podRef(s.namespace, pod.Name), msg, map[string]string{"node": pod.NodeName}); err != nil {
					return err
				}
			}
		}
		for _, m := range st.NodeMates {
			if m.Namespace != s.namespace {
				continue
			}
			msg := fmt.Sprintf("pod %q on node %s can enter the network namespace of pods %s protects on that node, and so reach their loopback-only ports: %s", m.Name, m.Node, p.Ref, strings.Join(m.Reasons, "; "))
			if err := s.add(v1alpha1.ReasonNodeMate, openreport.Violation, p.Action, p, podRef(s.namespace, m.Name), msg, map[string]string{"node": m.Node}); err != nil {
				return err
			}
		}
	}
	return nil
}

func podRef(namespace, name string) corev1.ObjectReference {
	return corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: name}
}
