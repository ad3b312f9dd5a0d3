// The objects under review (Cases): pods and Services, pre-marshalled the
// way the API server sends them, with the decision each expects.

package workload

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Case is one object under review.
type Case struct {
	// Name is the benchmark's sub-test name, e.g. "pod-10-containers".
	Name     string
	Kind     metav1.GroupVersionKind
	Resource metav1.GroupVersionResource
	// Object is the typed object; Raw is its JSON, as the API server sends
	// it in AdmissionRequest.Object.
	Object client.Object
	Raw    []byte
	// Allowed is the expected decision; a denial's message contains every
	// string of MessageContains.
	Allowed         bool
	MessageContains []string
}

var (
	podGVK     = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	podGVR     = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	serviceGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Service"}
	serviceGVR = metav1.GroupVersionResource{Version: "v1", Resource: "services"}
)

// Names of the cases.
const (
	Pod1      = "pod-1-container"
	Pod10     = "pod-10-containers"
	Service5  = "service-5-ports"
	AllowPod  = "allowed-pod"
	AllowSvc  = "allowed-service"
	DenyPod   = Pod1
	DenySvc   = Service5
	adminPort = 15000
)

var denyPodMessage = []string{"15000/TCP", "containerPort", GuardRef}

// Cases returns the benchmark cases: a pod with one container, a pod with
// ten, a Service with five ports. Each is reviewed in full: the pod is
// protected by GuardPolicy, selected by existing Services, and declares
// 15000/TCP (denied); the Service selects cart pods and targets the port
// named envoy-admin (denied).
func Cases() []Case {
	return []Case{
		newCase(Pod1, newPod(1, true), false, denyPodMessage...),
		newCase(Pod10, newPod(10, true), false, denyPodMessage...),
		newCase(Service5, newService(true), false, "envoy-admin", "15000/TCP", GuardRef),
	}
}

// AllCases returns Cases and their allowed variants (the same pod without
// the admin port, the same Service without the admin port), by name.
func AllCases() map[string]Case {
	m := map[string]Case{}
	for _, c := range Cases() {
		m[c.Name] = c
	}
	m[AllowPod] = newCase(AllowPod, newPod(1, false), true)
	m[AllowSvc] = newCase(AllowSvc, newService(false), true)
	return m
}

func newCase(name string, obj client.Object, allowed bool, msg ...string) Case {
	raw, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	c := Case{Name: name, Object: obj, Raw: raw, Allowed: allowed, MessageContains: msg}
	switch obj.(type) {
	case *corev1.Pod:
		c.Kind, c.Resource = podGVK, podGVR
	case *corev1.Service:
		c.Kind, c.Resource = serviceGVK, serviceGVR
	}
	return c
}

var requester = authenticationv1.UserInfo{
	Username: "system:serviceaccount:kube-system:replicaset-controller",
	UID:      "3f4a2b1c-0d9e-4f8a-b7c6-5d4e3f2a1b0c",
	Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
}

// AdmissionRequest returns the CREATE request of the case, its object
// pointing at Raw.
func (c Case) AdmissionRequest(uid types.UID) admissionv1.AdmissionRequest {
	kind, res := c.Kind, c.Resource
	return admissionv1.AdmissionRequest{
		UID: uid, Kind: kind, Resource: res, RequestKind: &kind, RequestResource: &res,
		Name: c.Object.GetName(), Namespace: Namespace, Operation: admissionv1.Create,
		UserInfo: requester,
		Object:   runtime.RawExtension{Raw: c.Raw},
		DryRun:   ptr.To(false),
		Options:  runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
	}
}

// Request returns the controller-runtime admission.Request of the case.
func (c Case) Request(uid types.UID) admission.Request {
	return admission.Request{AdmissionRequest: c.AdmissionRequest(uid)}
}

// Review returns the AdmissionReview v1 the API server POSTs for the case.
func (c Case) Review(uid types.UID) []byte {
	req := c.AdmissionRequest(uid)
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Check returns an error unless allowed and message are the case's
// expected decision.
func (c Case) Check(allowed bool, message string) error {
	if allowed != c.Allowed {
		return fmt.Errorf("%s: allowed=%v (message %q), want allowed=%v", c.Name, allowed, message, c.Allowed)
	}
	for _, s := range c.MessageContains {
		if !strings.Contains(message, s) {
			return fmt.Errorf("%s: message %q does not contain %q", c.Name, message, s)
		}
	}
	return nil
}

var created = metav1.NewTime(time.Date(2026, 5, 4, 10, 11, 12, 0, time.UTC))

// newPod returns a defaulted pod of a cart ReplicaSet with n containers:
// the app container "cart" (http 8080, metrics 9090), n-2 sidecars with two
// ports each and an "envoy" proxy (15001) that also declares its admin port
// 15000 when withAdmin; with n == 1, "cart" alone declares it.
func newPod(n int, withAdmin bool) *corev1.Pod {
	var ctrs []corev1.Container
	ctrs = append(ctrs, container("cart", "registry.example.com/shop/cart:v1.4.2",
		port("http", 8080), port("metrics", 9090)))
	for i := 1; i < n-1; i++ {
		ctrs = append(ctrs, container(fmt.Sprintf("sidecar-%d", i), fmt.Sprintf("registry.example.com/platform/sidecar-%d:v2.0.%d", i, i),
			port(fmt.Sprintf("s%d-http", i), int32(8100+i)), port(fmt.Sprintf("s%d-metrics", i), int32(9100+i))))
	}
	if n > 1 {
		ctrs = append(ctrs, container("envoy", "registry.example.com/platform/envoy:v1.34.1", port("envoy-http", 15001)))
	}
	if withAdmin {
		last := &ctrs[len(ctrs)-1]
		last.Ports = append(last.Ports, port("envoy-admin", adminPort))
	}
	name := "cart-7d9c8b6f5-n3w0n"
	if !withAdmin {
		name = "cart-7d9c8b6f5-ok4ay"
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, GenerateName: "cart-7d9c8b6f5-", Namespace: Namespace,
			Labels: copyMap(cartLabels),
			Annotations: map[string]string{
				"kubectl.kubernetes.io/default-container": "cart",
				"prometheus.io/scrape":                    "true",
				"prometheus.io/port":                      "9090",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-7d9c8b6f5",
				UID: "9b1f6c2e-4a3d-4e5f-8a7b-1c2d3e4f5a6b", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
			CreationTimestamp: created,
		},
		Spec: corev1.PodSpec{
			Containers:                    ctrs,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "cart",
			DeprecatedServiceAccount:      "cart",
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			SchedulerName: "default-scheduler",
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			Priority:           ptr.To[int32](0),
			EnableServiceLinks: ptr.To(true),
			PreemptionPolicy:   ptr.To(corev1.PreemptLowerPriority),
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cart-config"}, DefaultMode: ptr.To[int32](0o644)}}},
				{Name: "kube-api-access-7xk2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					DefaultMode: ptr.To[int32](0o644),
					Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
							Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
						{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
							Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
					},
				}}},
			},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable},
	}
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &created, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: podFields(pod)},
	}}
	return pod
}

func port(name string, p int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: p, Protocol: corev1.ProtocolTCP}
}

func container(name, image string, ports ...corev1.ContainerPort) corev1.Container {
	return corev1.Container{
		Name: name, Image: image,
		Args: []string{"--listen=:" + fmt.Sprint(ports[0].ContainerPort), "--log-level=info", "--config=/etc/" + name + "/config.yaml"},
		Env: []corev1.EnvVar{
			{Name: "GOMAXPROCS", Value: "2"},
			{Name: "LOG_FORMAT", Value: "json"},
			{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://otel-collector.observability:4317"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		},
		Ports: ports,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: "/etc/" + name, ReadOnly: true},
			{Name: "kube-api-access-7xk2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString(ports[0].Name), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds:    10,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
			FailureThreshold: 3,
		},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// podFields is a plausible managedFields FieldsV1 for the pod: one entry
// per label, container, env var and port, as the API server records them.
func podFields(pod *corev1.Pod) []byte {
	set := func(keys ...string) map[string]any {
		m := map[string]any{".": struct{}{}}
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	lbls := set()
	for k := range pod.Labels {
		lbls["f:"+k] = struct{}{}
	}
	ctrs := set()
	for _, c := range pod.Spec.Containers {
		env := set()
		for _, e := range c.Env {
			env[fmt.Sprintf(`k:{"name":%q}`, e.Name)] = set("f:name", "f:value")
		}
		ports := set()
		for _, p := range c.Ports {
			ports[fmt.Sprintf(`k:{"containerPort":%d,"protocol":"TCP"}`, p.ContainerPort)] = set("f:containerPort", "f:name", "f:protocol")
		}
		ctr := set("f:args", "f:image", "f:imagePullPolicy", "f:name", "f:terminationMessagePath", "f:terminationMessagePolicy")
		ctr["f:env"], ctr["f:ports"] = env, ports
		ctr["f:resources"] = map[string]any{".": struct{}{}, "f:limits": set("f:memory"), "f:requests": set("f:cpu", "f:memory")}
		ctr["f:readinessProbe"] = set("f:failureThreshold", "f:periodSeconds", "f:successThreshold", "f:timeoutSeconds")
		ctr["f:volumeMounts"] = set()
		ctrs[fmt.Sprintf(`k:{"name":%q}`, c.Name)] = ctr
	}
	fields := map[string]any{
		"f:metadata": map[string]any{
			"f:generateName": struct{}{}, "f:labels": lbls, "f:annotations": set(),
			"f:ownerReferences": map[string]any{".": struct{}{}, `k:{"uid":"9b1f6c2e-4a3d-4e5f-8a7b-1c2d3e4f5a6b"}`: struct{}{}},
		},
		"f:spec": map[string]any{
			"f:containers": ctrs, "f:dnsPolicy": struct{}{}, "f:enableServiceLinks": struct{}{},
			"f:restartPolicy": struct{}{}, "f:schedulerName": struct{}{}, "f:securityContext": set(),
			"f:serviceAccount": struct{}{}, "f:serviceAccountName": struct{}{},
			"f:terminationGracePeriodSeconds": struct{}{}, "f:volumes": set(),
		},
	}
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return b
}

// newService returns a defaulted ClusterIP Service selecting the cart pods
// with five ports (four without the admin one unless withAdmin): http to
// the named port http, https to 8443, metrics to the named port metrics,
// grpc with targetPort unset, and admin to the port named envoy-admin.
func newService(withAdmin bool) *corev1.Service {
	ports := []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
		{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443), Protocol: corev1.ProtocolTCP},
		{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
		{Name: "grpc", Port: 9000, Protocol: corev1.ProtocolTCP},
	}
	name := "cart-public"
	if withAdmin {
		ports = append(ports, corev1.ServicePort{Name: "admin", Port: 15000, TargetPort: intstr.FromString("envoy-admin"), Protocol: corev1.ProtocolTCP})
		name = "cart-admin"
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: Namespace, CreationTimestamp: created,
			Labels:      map[string]string{"app": "cart", "app.kubernetes.io/part-of": "shop", "team": "checkout"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"Service","metadata":{"name":"` + name + `","namespace":"shop"}}`},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
				Time: &created, FieldsType: "FieldsV1",
				FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configuration":{}},"f:labels":{".":{},"f:app":{},"f:app.kubernetes.io/part-of":{},"f:team":{}}},"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}`)},
			}},
		},
		Spec: corev1.ServiceSpec{
			Selector:              map[string]string{"app": "cart"},
			Ports:                 ports,
			Type:                  corev1.ServiceTypeClusterIP,
			SessionAffinity:       corev1.ServiceAffinityNone,
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicySingleStack),
			InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
		},
	}
}
