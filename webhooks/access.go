package webhooks

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// PortForwardPath is where the port-forward guard is served.
const PortForwardPath = "/validate-portforward"

// The rule is as narrow as it can be (CONNECT on pods/portforward only), so
// an outage of loopguard breaks port-forwards and nothing else. CONNECT is
// never a dry-run; the guard records Events, hence NoneOnDryRun.
// +kubebuilder:webhook:path=/validate-portforward,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,matchPolicy=Equivalent,groups="",resources=pods/portforward,verbs=connect,versions=v1,name=portforward.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// PortForwardGuard refuses kubectl port-forward to pods whose policies say
// nothing outside the pod may reach their loopback-only ports. The request
// carries no pod labels and objectSelector never matches CONNECT, so the
// pod is looked up in the informer cache.
type PortForwardGuard struct {
	Index    *policyindex.Index
	Reader   client.Reader
	Recorder events.EventRecorder
	Log      logr.Logger
}

var _ admission.Handler = &PortForwardGuard{}

// Handle implements admission.Handler. Decisions depend only on the pod,
// the policies and the requester, so kubectl's two calls per command
// (WebSocket, then the SPDY fallback) get the same answer.
func (g *PortForwardGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Connect || req.SubResource != "portforward" {
		return admission.Allowed("")
	}
	if !g.Index.Synced() {
		return admission.Errored(http.StatusServiceUnavailable, errNotSynced)
	}
	env := g.Index.Env(req.Namespace)
	if env.Empty() {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: req.Name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			// The kubelet cannot forward to a pod that does not exist.
			return admission.Allowed("")
		}
		return admission.Errored(http.StatusInternalServerError, err)
	}
	who := rules.Requester{Username: req.UserInfo.Username, Groups: req.UserInfo.Groups}
	d := rules.EvaluatePortForward(env, pod.Labels, who)
	if d.Action == "" {
		return admission.Allowed("")
	}
	decision := strings.ToLower(string(d.Action))
	metrics.PortForwards.WithLabelValues(req.Namespace, decision).Inc()
	refs := make([]string, len(d.Policies))
	for i, r := range d.Policies {
		refs[i] = r.String()
	}
	g.Log.Info("port-forward to a protected pod", "decision", decision, "user", who.Username, "groups", who.Groups,
		"namespace", req.Namespace, "pod", req.Name, "policies", refs)
	g.record(env, d, req.Namespace, req.Name, who.Username, decision)
	if d.Action == v1alpha1.PortForwardDeny {
		return admission.Denied(d.Message(req.Namespace, req.Name))
	}
	return admission.Allowed("")
}

// record puts an Event on every policy involved: who port-forwarded to
// which pod, and what happened.
func (g *PortForwardGuard) record(env *rules.Env, d rules.PortForwardDecision, namespace, pod, user, decision string) {
	if g.Recorder == nil {
		return
	}
	for _, ref := range d.Policies {
		var obj runtime.Object
		uid := policyUID(env, ref)
		if ref.Kind == rules.KindClusterLoopbackService {
			obj = &v1alpha1.ClusterLoopbackService{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, UID: uid}}
		} else {
			obj = &v1alpha1.LoopbackService{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace, UID: uid}}
		}
		eventType := corev1.EventTypeNormal
		if decision == "deny" {
			eventType = corev1.EventTypeWarning
		}
		g.Recorder.Eventf(obj, nil, eventType, "PortForward", "PortForward", "port-forward by %q to pod %s/%s: %s", user, namespace, pod, decision)
	}
}

func policyUID(env *rules.Env, ref rules.PolicyRef) types.UID {
	for _, s := range env.Sets {
		for _, p := range s.Policies() {
			if p.Ref == ref {
				return p.UID
			}
		}
	}
	return ""
}
