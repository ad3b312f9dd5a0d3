package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/transport/spdy"
)

// otherNS is a namespace no policy selects, for an EndpointSlice that
// reaches a protected pod from outside its namespace.
const otherNS = "cmp-other"

// holdFinalizer keeps the terminating Service of the cases terminating.
const holdFinalizer = "loopguard-compare/hold"

// moreCases are the cases of the security work (issue #15): ways around a
// Service and into a pod that the first cases did not try.
func moreCases() []caseDef {
	const svcGroup, accessGroup, updGroup = "Services, EndpointSlices and NetworkPolicies", "ways into a protected pod", "updates"
	return []caseDef{
		{group: svcGroup, name: "named targetPort resolved through a pod's containerPort name (debug-http = 6063)", wantDeny: true, eventual: true,
			do: createSvc(svc("by-port-name", map[string]string{"role": "named"}, 80, intstr.FromString("debug-http")))},
		{group: svcGroup, name: "hand-written EndpointSlice to a protected pod (same namespace, 15000)", wantDeny: true, do: createSlice(casesNS)},
		{group: svcGroup, name: "hand-written EndpointSlice in another namespace to a protected pod (15000)", wantDeny: true, do: createSlice(otherNS)},
		{group: svcGroup, name: "tenant NetworkPolicy allowing ingress to the protected pods on 15000", wantDeny: true, do: func(ctx context.Context, e *env) error {
			port := intstr.FromInt32(15000)
			_, err := e.cs.NetworkingV1().NetworkPolicies(casesNS).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "reopen"},
				Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: cart},
					Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}}, dryRun)
			return err
		}},
		{group: accessGroup, name: "kubectl exec into a protected pod", wantDeny: true, do: connect("exec", url.Values{"command": {"true"}, "stdout": {"true"}})},
		{group: accessGroup, name: "kubectl attach to a protected pod", wantDeny: true, do: connect("attach", url.Values{"stdout": {"true"}})},
		{group: accessGroup, name: "kubectl debug: an ephemeral container (no port) in a protected pod", wantDeny: true, do: func(ctx context.Context, e *env) error {
			p, err := e.cs.CoreV1().Pods(casesNS).Get(ctx, "existing", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debugger", Image: "registry.invalid/debug:1"}})
			_, err = e.cs.CoreV1().Pods(casesNS).UpdateEphemeralContainers(ctx, "existing", p, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
		{group: accessGroup, name: "relabel-out: a protected pod relabelled out of the policy (then port-forward would not be guarded)", wantDeny: true, do: func(ctx context.Context, e *env) error {
			p, err := e.cs.CoreV1().Pods(casesNS).Get(ctx, "existing", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			p.Labels = map[string]string{"app": "web", "tier": "api"}
			_, err = e.cs.CoreV1().Pods(casesNS).Update(ctx, p, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
		{group: updGroup, name: "a terminating Service retargeted to 15000", wantDeny: true, do: func(ctx context.Context, e *env) error {
			s, err := e.cs.CoreV1().Services(casesNS).Get(ctx, "terminating", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			if s.DeletionTimestamp == nil {
				return errors.New("setup: Service terminating is not terminating")
			}
			s.Spec.Ports[0].TargetPort = intstr.FromInt32(15000)
			_, err = e.cs.CoreV1().Services(casesNS).Update(ctx, s, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
	}
}

// moreAdmitted are controls of the security work that must pass.
func moreAdmitted() []caseDef {
	return []caseDef{
		{group: "must be admitted", name: "an update that keeps an existing exposure (annotation on a Service that predates the policy)", do: func(ctx context.Context, e *env) error {
			s, err := e.cs.CoreV1().Services(casesNS).Get(ctx, "legacy", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			s.Annotations = map[string]string{"owner": "team-cart"}
			_, err = e.cs.CoreV1().Services(casesNS).Update(ctx, s, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
	}
}

func createSlice(ns string) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		port, proto := int32(15000), corev1.ProtocolTCP
		_, err := e.cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "hand-written"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.10"},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: casesNS, Name: "existing"}}},
			Ports: []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
		}, dryRun)
		return err
	}
}

// setupPrePolicy creates, before the engine's policy exists, what predates
// it: a protected pod that names its protected port debug-http, and a
// Service that already reaches a protected port.
func (e *env) setupPrePolicy(ctx context.Context) error {
	if _, err := e.cs.CoreV1().Pods(casesNS).Create(ctx, podWith("named", map[string]string{"app": "cart", "role": "named"}, func(s *corev1.PodSpec) {
		s.Containers[0].Ports = []corev1.ContainerPort{{Name: "debug-http", ContainerPort: 6063}}
	}), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create the case fixture pod named: %w", err)
	}
	if _, err := e.cs.CoreV1().Services(casesNS).Create(ctx, svc("legacy", map[string]string{"app": "cart", "tier": "legacy"}, 80, intstr.FromInt32(15000)), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create the case fixture Service legacy: %w", err)
	}
	return nil
}

// setupTerminating makes Service terminating exist and be terminating (a
// finalizer holds it); it must be admitted while the policy is in place.
func (e *env) setupTerminating(ctx context.Context) error {
	s := svc("terminating", cart, 80, intstr.FromInt32(8080))
	s.Finalizers = []string{holdFinalizer}
	if _, err := e.cs.CoreV1().Services(casesNS).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create the case fixture Service terminating: %w", err)
	}
	if err := e.cs.CoreV1().Services(casesNS).Delete(ctx, "terminating", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to start deleting Service terminating: %w", err)
	}
	return nil
}

// releaseTerminating removes the finalizer, so that the Service goes.
func (e *env) releaseTerminating(ctx context.Context) {
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	_, _ = e.cs.CoreV1().Services(casesNS).Patch(ctx, "terminating", types.MergePatchType, patch, metav1.PatchOptions{})
}

// connect opens the SPDY stream kubectl opens for exec or attach to the
// protected pod "existing". An admitted request fails after admission, at
// the kubelet step (no node), with another error.
func connect(sub string, params url.Values) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		rt, upgrader, err := spdy.RoundTripperFor(e.cfg)
		if err != nil {
			return err
		}
		req := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(casesNS).Name("existing").SubResource(sub)
		for k, vs := range params {
			for _, v := range vs {
				req = req.Param(k, v)
			}
		}
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt, Timeout: 20 * time.Second}, http.MethodPost, req.URL())
		conn, _, err := dialer.Dial("v4.channel.k8s.io")
		if err == nil {
			conn.Close()
			return nil
		}
		return connectError(sub, err)
	}
}

// connectError tells an admission refusal of a CONNECT from the failure an
// admitted one meets later.
func connectError(sub string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "denied the request"), strings.Contains(msg, "ValidatingAdmissionPolicy"):
		return apierrors.NewForbidden(corev1.Resource("pods/"+sub), "existing", errors.New(msg))
	case strings.Contains(msg, "failed calling webhook"):
		return errors.New(msg)
	}
	return nil
}
