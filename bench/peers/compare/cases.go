package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// outcome of one case against one engine.
type outcome string

const (
	caught        outcome = "caught"
	missed        outcome = "missed"
	apiRefused    outcome = "refused by the API server"
	admitted      outcome = "admitted"
	falsePositive outcome = "FALSE POSITIVE"
	failed        outcome = "error"
)

type caseResult struct {
	outcome outcome
	detail  string // the denial or the error, shortened
}

// caseDef is one evasion attempt (wantDeny) or one control that must pass.
// The list follows loopguard's own admission tests (webhooks/*_test.go,
// test/e2e, internal/rules), against the policy in bench/peers/policies:
// pods labelled app=cart; 15000/TCP (named envoy-admin), 6060-6069/TCP,
// 5353/UDP, 9000/SCTP loopback-only.
type caseDef struct {
	group, name string
	wantDeny    bool
	eventual    bool // depends on objects created just before: retried for 20s
	do          func(ctx context.Context, e *env) error
}

var dryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

func podWith(name string, labels map[string]string, mutate func(*corev1.PodSpec)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: casesNS, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
	}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

var cart = map[string]string{"app": "cart"}

func withPort(container string, port int32, proto corev1.Protocol) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers = append(s.Containers, corev1.Container{Name: container, Image: "registry.invalid/" + container + ":1",
			Ports: []corev1.ContainerPort{{ContainerPort: port, Protocol: proto}}})
	}
}

func withInit(port int32, sidecar bool) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		c := corev1.Container{Name: "warmup", Image: "registry.invalid/warmup:1", Ports: []corev1.ContainerPort{{ContainerPort: port}}}
		if sidecar {
			always := corev1.ContainerRestartPolicyAlways
			c.Name, c.RestartPolicy = "envoy", &always
		}
		s.InitContainers = append(s.InitContainers, c)
	}
}

func createPod(p *corev1.Pod) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		_, err := e.cs.CoreV1().Pods(casesNS).Create(ctx, p, dryRun)
		return err
	}
}

func template(mutate func(*corev1.PodSpec)) corev1.PodTemplateSpec {
	p := podWith("", cart, mutate)
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec}
}

func jobTemplate(mutate func(*corev1.PodSpec)) corev1.PodTemplateSpec {
	t := template(mutate)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return t
}

func svc(name string, selector map[string]string, port int32, target intstr.IntOrString) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: casesNS},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Name: "p", Port: port, TargetPort: target}}},
	}
	return s
}

func createSvc(s *corev1.Service) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		_, err := e.cs.CoreV1().Services(casesNS).Create(ctx, s, dryRun)
		return err
	}
}

func cases() []caseDef {
	sel := &metav1.LabelSelector{MatchLabels: cart}
	envoy := withPort("envoy", 15000, "")
	wl := func(name string, create func(ctx context.Context, e *env) error) caseDef {
		return caseDef{group: "workload templates (containerPort 15000 in the pod template)", name: name, wantDeny: true, do: create}
	}
	base := []caseDef{
		{group: "pods", name: "containerPort in a container", wantDeny: true, do: createPod(podWith("c", cart, envoy))},
		{group: "pods", name: "port in a range, in an init container (6065)", wantDeny: true, do: createPod(podWith("init", cart, withInit(6065, false)))},
		{group: "pods", name: "native sidecar (init container, restartPolicy Always)", wantDeny: true, do: createPod(podWith("sidecar", cart, withInit(15000, true)))},
		{group: "pods", name: "last port of a range (6069)", wantDeny: true, do: createPod(podWith("end", cart, withPort("debug", 6069, "")))},
		{group: "pods", name: "UDP (5353/UDP)", wantDeny: true, do: createPod(podWith("udp", cart, withPort("dns", 5353, corev1.ProtocolUDP)))},
		{group: "pods", name: "SCTP (9000/SCTP)", wantDeny: true, do: createPod(podWith("sctp", cart, withPort("sig", 9000, corev1.ProtocolSCTP)))},
		{group: "pods", name: "hostPort (15000 published as 31500)", wantDeny: true, do: createPod(podWith("hostport", cart, func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 15000, HostPort: 31500}}
		}))},
		{group: "pods", name: "hostNetwork", wantDeny: true, do: createPod(podWith("hostnet", cart, func(s *corev1.PodSpec) { s.HostNetwork = true }))},
		{group: "pods", name: "ephemeral container with a port (pods/ephemeralcontainers)", wantDeny: true, do: func(ctx context.Context, e *env) error {
			p, err := e.cs.CoreV1().Pods(casesNS).Get(ctx, "existing", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "registry.invalid/debug:1", Ports: []corev1.ContainerPort{{ContainerPort: 15000}}}})
			_, err = e.cs.CoreV1().Pods(casesNS).UpdateEphemeralContainers(ctx, "existing", p, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
		{group: "pods", name: "label change on update brings a pod with 15000 under the policy", wantDeny: true, do: func(ctx context.Context, e *env) error {
			p, err := e.cs.CoreV1().Pods(casesNS).Get(ctx, "relabel", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			p.Labels = cart
			_, err = e.cs.CoreV1().Pods(casesNS).Update(ctx, p, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
		wl("Deployment", func(ctx context.Context, e *env) error {
			_, err := e.cs.AppsV1().Deployments(casesNS).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: appsv1.DeploymentSpec{Selector: sel, Template: template(envoy)}}, dryRun)
			return err
		}),
		wl("ReplicaSet", func(ctx context.Context, e *env) error {
			_, err := e.cs.AppsV1().ReplicaSets(casesNS).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: template(envoy)}}, dryRun)
			return err
		}),
		wl("StatefulSet", func(ctx context.Context, e *env) error {
			_, err := e.cs.AppsV1().StatefulSets(casesNS).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: appsv1.StatefulSetSpec{Selector: sel, Template: template(envoy)}}, dryRun)
			return err
		}),
		wl("DaemonSet", func(ctx context.Context, e *env) error {
			_, err := e.cs.AppsV1().DaemonSets(casesNS).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: appsv1.DaemonSetSpec{Selector: sel, Template: template(envoy)}}, dryRun)
			return err
		}),
		wl("Job", func(ctx context.Context, e *env) error {
			_, err := e.cs.BatchV1().Jobs(casesNS).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: batchv1.JobSpec{Template: jobTemplate(envoy)}}, dryRun)
			return err
		}),
		wl("CronJob", func(ctx context.Context, e *env) error {
			_, err := e.cs.BatchV1().CronJobs(casesNS).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: batchv1.CronJobSpec{Schedule: "@hourly", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate(envoy)}}}}, dryRun)
			return err
		}),
		wl("ReplicationController", func(ctx context.Context, e *env) error {
			t := template(envoy)
			_, err := e.cs.CoreV1().ReplicationControllers(casesNS).Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
				Spec: corev1.ReplicationControllerSpec{Selector: cart, Template: &t}}, dryRun)
			return err
		}),
		{group: "workload templates (containerPort 15000 in the pod template)", name: "hostNetwork in a Deployment template", wantDeny: true, do: func(ctx context.Context, e *env) error {
			_, err := e.cs.AppsV1().Deployments(casesNS).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "hostnet"},
				Spec: appsv1.DeploymentSpec{Selector: sel, Template: template(func(s *corev1.PodSpec) { s.HostNetwork = true })}}, dryRun)
			return err
		}},
		{group: "workload templates (containerPort 15000 in the pod template)", name: "update of an existing Deployment adds 15000", wantDeny: true, do: func(ctx context.Context, e *env) error {
			d, err := e.cs.AppsV1().Deployments(casesNS).Get(ctx, "grow", metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 15000}}
			_, err = e.cs.AppsV1().Deployments(casesNS).Update(ctx, d, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}},
		{group: "Services", name: "numeric targetPort 15000, selector app=cart", wantDeny: true, do: createSvc(svc("num", cart, 80, intstr.FromInt32(15000)))},
		{group: "Services", name: "named targetPort envoy-admin", wantDeny: true, do: createSvc(svc("named", cart, 80, intstr.FromString("envoy-admin")))},
		{group: "Services", name: "defaulted targetPort (port 6061, no targetPort)", wantDeny: true, do: createSvc(svc("def", cart, 6061, intstr.IntOrString{}))},
		{group: "Services", name: "race, Service second: selects an existing protected pod by another label (tier=api), targetPort 6062", wantDeny: true, eventual: true,
			do: createSvc(svc("by-tier", map[string]string{"tier": "api"}, 80, intstr.FromInt32(6062)))},
		{group: "Services", name: "race, pod second: a pod an existing Service (role=admin, targetPort 15000) selects", wantDeny: true, eventual: true,
			do: createPod(podWith("newcomer", map[string]string{"app": "cart", "role": "admin"}, nil))},
		{group: "ways into a protected pod", name: "kubectl port-forward to a protected pod", wantDeny: true, do: portForward},
	}
	base = append(base, moreCases()...)
	base = append(base, []caseDef{
		{group: "must be admitted", name: "other labels (app=web) with 15000", do: createPod(podWith("web", map[string]string{"app": "web"}, envoy))},
		{group: "must be admitted", name: "TCP on the UDP-only port 5353", do: createPod(podWith("tcp5353", cart, withPort("dns", 5353, corev1.ProtocolTCP)))},
		{group: "must be admitted", name: "port after the range (6070)", do: createPod(podWith("p6070", cart, withPort("debug", 6070, "")))},
		{group: "must be admitted", name: "Service app=cart to an open port (8080)", do: createSvc(svc("web", cart, 80, intstr.FromInt32(8080)))},
		{group: "must be admitted", name: "Service whose selector selects no protected pod (role=x, 15000)", do: createSvc(svc("other", map[string]string{"role": "x"}, 80, intstr.FromInt32(15000)))},
		{group: "must be admitted", name: "selector-less Service on 15000", do: createSvc(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: casesNS},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 15000}}}})},
	}...)
	return append(base, moreAdmitted()...)
}

// setupCases creates, for real, the objects the race, update and
// port-forward cases need; each engine must admit them.
func (e *env) setupCases(ctx context.Context) error {
	steps := []struct {
		what string
		do   func() error
	}{
		{"pod existing", func() error {
			_, err := e.cs.CoreV1().Pods(casesNS).Create(ctx, podWith("existing", map[string]string{"app": "cart", "tier": "api"}, nil), metav1.CreateOptions{})
			return err
		}},
		{"pod relabel", func() error {
			_, err := e.cs.CoreV1().Pods(casesNS).Create(ctx, podWith("relabel", map[string]string{"app": "web"}, withPort("envoy", 15000, "")), metav1.CreateOptions{})
			return err
		}},
		{"service admin", func() error {
			_, err := e.cs.CoreV1().Services(casesNS).Create(ctx, svc("admin", map[string]string{"role": "admin"}, 9000, intstr.FromInt32(15000)), metav1.CreateOptions{})
			return err
		}},
		{"deployment grow", func() error {
			_ = e.cs.AppsV1().Deployments(casesNS).Delete(ctx, "grow", metav1.DeleteOptions{})
			zero := int32(0)
			_, err := e.cs.AppsV1().Deployments(casesNS).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "grow"},
				Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: cart},
					Template: template(withPort("web", 8080, ""))}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create the case fixture %s: %w", s.what, err)
		}
	}
	return e.setupTerminating(ctx)
}

// portForward opens the port-forward stream to the protected pod "existing"
// the way kubectl does (an SPDY upgrade of POST pods/existing/portforward);
// kubectl itself refuses to try while the pod is not Running, and pods
// never run on the node-less compare cluster. An admitted request fails
// after admission, at the kubelet step, with another error.
func portForward(ctx context.Context, e *env) error {
	rt, upgrader, err := spdy.RoundTripperFor(e.cfg)
	if err != nil {
		return err
	}
	u := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(casesNS).Name("existing").SubResource("portforward").
		Param("ports", "15000").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt, Timeout: 20 * time.Second}, http.MethodPost, u)
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err == nil {
		conn.Close()
		return nil
	}
	return connectError("portforward", err)
}

// runCases runs every case against the installed case policy.
func (e *env) runCases(ctx context.Context) map[string]caseResult {
	out := map[string]caseResult{}
	for _, c := range cases() {
		deadline := time.Now()
		if c.eventual {
			deadline = deadline.Add(20 * time.Second)
		}
		var r caseResult
		for {
			r = classify(c.wantDeny, c.do(ctx, e))
			if r.outcome != missed || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		out[c.name] = r
		e.logf("  %-95s %s", c.name, r.outcome)
	}
	return out
}

func classify(wantDeny bool, err error) caseResult {
	short := func(err error) string {
		s := err.Error()
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		return s
	}
	switch {
	case err == nil && wantDeny:
		return caseResult{outcome: missed}
	case err == nil:
		return caseResult{outcome: admitted}
	case isAdmissionDenial(err) && wantDeny:
		return caseResult{outcome: caught, detail: short(err)}
	case isAdmissionDenial(err):
		return caseResult{outcome: falsePositive, detail: short(err)}
	case apierrors.IsInvalid(err) && wantDeny:
		return caseResult{outcome: apiRefused, detail: short(err)}
	}
	return caseResult{outcome: failed, detail: short(err)}
}
