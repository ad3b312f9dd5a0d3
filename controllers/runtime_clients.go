package controllers

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	"github.com/loopguard/loopguard/api/v1alpha1"
	"github.com/loopguard/loopguard/internal/podview"
	"github.com/loopguard/loopguard/internal/rules"
)

// observeClients judges the clients the agent sampled for one checked pod
// (rules.UnexpectedClients decides) and adds the unexpected ones to ro.
func (a *runtimeObservation) observeClients(ports []v1alpha1.LoopbackPort, pod *podview.Pod, pr *v1alpha1.PodBindReport) {
	if len(pr.Clients) == 0 {
		return
	}
	for _, f := range rules.UnexpectedClients(ports, pr.Clients) {
		a.clients = append(a.clients, v1alpha1.RuntimeClient{
			Namespace: pod.Namespace, Pod: pod.Name, Node: pod.NodeName, Port: f.Port,
			Container: f.Container, Outside: f.Outside, Process: f.Process, Field: f.Field, Message: f.Message,
		})
	}
}

// setClients renders the unexpected clients into st, sorted and capped,
// with their total.
func (a *runtimeObservation) setClients(st *v1alpha1.RuntimeStatus) {
	sort.Slice(a.clients, func(i, j int) bool { return clientKey(a.clients[i]) < clientKey(a.clients[j]) })
	st.UnexpectedClientCount = int32(len(a.clients))
	if len(a.clients) > 0 {
		st.UnexpectedClients = a.clients[:min(len(a.clients), v1alpha1.MaxStatusViolations)]
	}
}

// clientKey identifies one distinct client: an agent lists each once while
// it lasts, so a key announced once is not announced again.
func clientKey(c v1alpha1.RuntimeClient) string {
	return fmt.Sprintf("%s/%s/%05d/%t/%s/%s", c.Namespace, c.Pod, c.Port, c.Outside, c.Container, c.Process)
}

// describeClient is the sentence an Event, the RuntimeVerified condition
// and the Report's result use for one unexpected client: the pod and its
// node, then the engine's message (port, container or "outside the pod's
// containers", process, and the field that does not list it).
func describeClient(c v1alpha1.RuntimeClient) string {
	s := fmt.Sprintf("pod %s/%s", c.Namespace, c.Pod)
	if c.Node != "" {
		s += " on node " + c.Node
	}
	s += ", " + c.Message
	if len(s) > maxEventNote {
		s = s[:maxEventNote-3] + "..."
	}
	return s
}

// newClients returns the unexpected clients of cur that old did not list.
func newClients(old, cur *v1alpha1.RuntimeStatus) []v1alpha1.RuntimeClient {
	if cur == nil {
		return nil
	}
	var before []v1alpha1.RuntimeClient
	if old != nil {
		before = old.UnexpectedClients
	}
	return notIn(before, cur.UnexpectedClients, clientKey)
}

// announceClients emits one Warning Event per unexpected client new since
// the last status, regarding the policy and related to the pod, bounded
// per reconcile like violations.
func announceClients(rec events.EventRecorder, obj policyObject, old, cur *v1alpha1.RuntimeStatus) {
	for i, c := range newClients(old, cur) {
		if i == maxEventsPerReconcile {
			return
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Pod}}
		rec.Eventf(obj, pod, corev1.EventTypeWarning, v1alpha1.ReasonUnexpectedClient, "Scan", "%s", describeClient(c))
	}
}
