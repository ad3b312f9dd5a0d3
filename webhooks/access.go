package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/clusterindex"
	"github.com/loopguard/loopguard/internal/metrics"
	"github.com/loopguard/loopguard/internal/policyindex"
	"github.com/loopguard/loopguard/internal/rules"
)

// PortForwardPath is where the access guard is served, every door on the
// one path, named for the first door it guarded. During a rolling upgrade
// the new webhook configuration meets managers of the previous version,
// which serve this path and admit any request other than a port-forward;
// a new path would answer 404 there and, under failurePolicy Fail, break
// every exec until the rollout ends.
const PortForwardPath = "/validate-portforward"

// Every rule is as narrow as it can be (one door each), so an outage of
// loopguard breaks these doors and nothing else, and the namespaces of the
// control plane and of loopguard itself are excluded
// (config/webhook/namespace-selector-patch.yaml), so an operator can still
// exec into them to repair loopguard. CONNECT is never a dry-run; an
// ephemeral-container update can be, and then records nothing: hence
// NoneOnDryRun.
//
// failurePolicy is Fail for every door, as it was for port-forward: exec,
// attach and an ephemeral container reach the loopback as surely as a
// port-forward does, so a door that failed open would make port-forward's
// Fail pointless (whoever may port-forward may exec), and loopguard's
// promise is that every access to a protected pod is refused or recorded
// with who did it, which an access admitted while loopguard is down is
// not. The price: while no manager replica answers, exec, attach, debug
// and proxy fail in every namespace the webhooks cover (failurePolicy is
// per webhook, not per policy: an outage also blocks exec into pods no
// policy selects). Run two replicas (the default) and keep the excluded
// namespaces for break-glass; the chart's webhook.failurePolicy trades
// this for availability.
// +kubebuilder:webhook:path=/validate-portforward,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,matchPolicy=Equivalent,groups="",resources=pods/portforward,verbs=connect,versions=v1,name=portforward.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-portforward,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,matchPolicy=Equivalent,groups="",resources=pods/exec;pods/attach,verbs=connect,versions=v1,name=exec.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-portforward,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,matchPolicy=Equivalent,groups="",resources=pods/ephemeralcontainers,verbs=update,versions=v1,name=debug.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-portforward,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,matchPolicy=Equivalent,groups="",resources=pods/proxy;services/proxy,verbs=connect,versions=v1,name=proxy.loopguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// AccessGuard refuses or records the ways into a pod through the API
// server (port-forward, exec, attach, an ephemeral container, and the
// proxy to a protected port) where the pod's policies say so. A CONNECT
// request carries no pod labels and objectSelector never matches it, so
// the pod (and a proxied Service) is looked up in the informer cache.
type AccessGuard struct {
	Index    *policyindex.Index
	Reader   client.Reader
	Recorder events.EventRecorder
	// Namespaces: as ExposureValidator's.
	Namespaces policyindex.LabelsFunc
	Log        logr.Logger
}

var _ admission.Handler = &AccessGuard{}

// Handle implements admission.Handler. Decisions depend only on the pod,
// the policies and the requester, so kubectl's two calls per command
// (WebSocket, then the SPDY fallback) get the same answer.
func (g *AccessGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	access, ok := accessOf(req)
	if !ok {
		return admission.Allowed("")
	}
	if !g.Index.Synced() {
		return admission.Errored(http.StatusServiceUnavailable, errNotSynced)
	}
	env, err := g.Index.EnvLive(ctx, req.Namespace, g.Namespaces)
	if err != nil {
		return admission.Errored(http.StatusServiceUnavailable, err)
	}
	if env.Empty() {
		return admission.Allowed("")
	}
	who := rules.Requester{Username: req.UserInfo.Username, Groups: req.UserInfo.Groups}
	d, pod, err := g.decide(ctx, req, env, access, who)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if d.Action == "" {
		return admission.Allowed("")
	}
	decision := strings.ToLower(string(d.Action))
	if access == rules.AccessPortForward {
		metrics.PortForwards.WithLabelValues(req.Namespace, decision).Inc()
	}
	metrics.PodAccess.WithLabelValues(req.Namespace, string(access), decision).Inc()
	refs := make([]string, len(d.Policies))
	for i, r := range d.Policies {
		refs[i] = r.String()
	}
	kv := []any{"decision", decision, "user", who.Username, "groups", who.Groups, "namespace", req.Namespace, "pod", pod, "policies", refs}
	if access == rules.AccessProxy {
		kv = append(kv, "port", d.Port, "service", d.Service)
	}
	g.Log.Info(fmt.Sprintf("%s to a protected pod", access), kv...)
	if req.DryRun == nil || !*req.DryRun {
		g.record(env, d, who.Username, req.Namespace, pod, d.Note(who.Username, req.Namespace, pod), decision)
	}
	if d.Action == v1alpha1.AccessDeny {
		return admission.Denied(d.Message(req.Namespace, pod))
	}
	return admission.Allowed("")
}

// accessOf says which way into a pod a request is; false for any request
// the guard does not judge.
func accessOf(req admission.Request) (rules.Access, bool) {
	if req.Resource.Group != "" {
		return "", false
	}
	switch {
	case req.Operation == admissionv1.Connect && req.Resource.Resource == "pods":
		switch req.SubResource {
		case "portforward":
			return rules.AccessPortForward, true
		case "exec":
			return rules.AccessExec, true
		case "attach":
			return rules.AccessAttach, true
		case "proxy":
			return rules.AccessProxy, true
		}
	case req.Operation == admissionv1.Connect && req.Resource.Resource == "services" && req.SubResource == "proxy":
		return rules.AccessProxy, true
	case req.Operation == admissionv1.Update && req.Resource.Resource == "pods" && req.SubResource == "ephemeralcontainers":
		return rules.AccessDebug, true
	}
	return "", false
}

// decide gathers what the rule needs from the request and the cache and
// returns the decision and the name of the pod it is about. An object
// that does not exist gets an empty decision: the API server fails the
// request after admission.
func (g *AccessGuard) decide(ctx context.Context, req admission.Request, env *rules.Env, access rules.Access, who rules.Requester) (rules.AccessDecision, string, error) {
	none := rules.AccessDecision{}
	switch {
	case access == rules.AccessDebug:
		podLabels, added, err := ephemeralChange(req)
		if err != nil || !added {
			// Nothing new runs in the pod (or the object is not a pod the
			// API server would store): nothing to judge.
			return none, req.Name, nil
		}
		return rules.EvaluateAccess(env, podLabels, who, access), req.Name, nil
	case access == rules.AccessProxy && req.Resource.Resource == "services":
		t, ok := rules.ParseProxyTarget(req.Name)
		if !ok {
			return none, req.Name, nil // the API server answers 400
		}
		svc := &corev1.Service{}
		if err := g.Reader.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: t.Name}, svc); err != nil {
			return none, t.Name, client.IgnoreNotFound(err)
		}
		pods, err := clusterindex.PodsMatching(ctx, g.Reader, req.Namespace, labels.SelectorFromSet(svc.Spec.Selector))
		if err != nil {
			return none, t.Name, err
		}
		d := rules.EvaluateServiceProxy(env, svc, t, pods, who)
		return d, d.Pod, nil
	}
	name := req.Name
	var t rules.ProxyTarget
	if access == rules.AccessProxy {
		var ok bool
		if t, ok = rules.ParseProxyTarget(req.Name); !ok {
			return none, req.Name, nil // the API server answers 400
		}
		name = t.Name
	}
	pod, err := clusterindex.Pod(ctx, g.Reader, req.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			// The kubelet cannot reach a pod that does not exist.
			return none, name, nil
		}
		return none, name, err
	}
	if access == rules.AccessProxy {
		return rules.EvaluatePodProxy(env, pod, t, who), name, nil
	}
	return rules.EvaluateAccess(env, pod.Labels, who, access), name, nil
}

// ephemeralPod is what the debug guard reads of the pods in an update of
// pods/ephemeralcontainers: a crafted request decodes into it or fails.
type ephemeralPod struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		EphemeralContainers []struct {
			Name string `json:"name"`
		} `json:"ephemeralContainers"`
	} `json:"spec"`
}

// ephemeralChange returns the labels of the pod (as stored, before the
// update) and whether the update adds an ephemeral container to it.
func ephemeralChange(req admission.Request) (map[string]string, bool, error) {
	var oldPod, newPod ephemeralPod
	if err := json.Unmarshal(req.Object.Raw, &newPod); err != nil {
		return nil, false, err
	}
	if len(req.OldObject.Raw) > 0 {
		if err := json.Unmarshal(req.OldObject.Raw, &oldPod); err != nil {
			return nil, false, err
		}
	} else {
		oldPod.Metadata = newPod.Metadata
	}
	had := make(map[string]bool, len(oldPod.Spec.EphemeralContainers))
	for _, c := range oldPod.Spec.EphemeralContainers {
		had[c.Name] = true
	}
	for _, c := range newPod.Spec.EphemeralContainers {
		if !had[c.Name] {
			return oldPod.Metadata.Labels, true, nil
		}
	}
	return oldPod.Metadata.Labels, false, nil
}

// record puts an Event on every policy involved: who reached which pod,
// how, and what happened. The Event's related object is the pod and its
// action names the user, because the recorder folds Events that differ in
// their note only into one series that keeps the first note: without them,
// a second user's access within minutes of the first's would be counted
// but not named.
func (g *AccessGuard) record(env *rules.Env, d rules.AccessDecision, who, namespace, pod, note, decision string) {
	if g.Recorder == nil {
		return
	}
	reason := accessReasons[d.Access]
	if d.Service != "" {
		reason = "ServiceProxy"
	}
	related := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: pod}}
	action := eventAction(reason, who)
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
		g.Recorder.Eventf(obj, related, eventType, reason, action, "%s", note)
	}
}

// maxEventAction is the API server's bound on an Event's action.
const maxEventAction = 128

// eventAction is "<Reason> by <user>", cut to what an Event's action may
// hold with a hash of the user in place of the rest, so that two users
// never share a series. A user name with the hash's "~" in it is hashed
// too, however short: else a user who may pick their name takes another's
// cut action as theirs (the hash needs no secret).
func eventAction(reason, user string) string {
	a := reason + " by " + user
	if len(a) <= maxEventAction && !strings.Contains(user, "~") {
		return a
	}
	sum := sha256.Sum256([]byte(user))
	suffix := "~" + hex.EncodeToString(sum[:8])
	return a[:min(len(a), maxEventAction-len(suffix))] + suffix
}

// accessReasons are the Events' reasons, one per access (and
// ServiceProxy for a proxy through a Service).
var accessReasons = map[rules.Access]string{
	rules.AccessPortForward: "PortForward",
	rules.AccessExec:        "Exec",
	rules.AccessAttach:      "Attach",
	rules.AccessDebug:       "Debug",
	rules.AccessProxy:       "Proxy",
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
