package slim

import "github.com/loopguard/loopguard/api/v1alpha1"

// NodeBindReport is a cache transform for the manager's NodeBindReports.
// The manager reads of a report when it was scanned and how often (its
// staleness), and each pod's entry: its names, hostNetwork, listeners
// (protocol, address, port, container, process), clients and why it was
// unchecked. It drops the rest: annotations, conditions and errors (the
// agent's own health, which kubectl reads from the API), the agent's
// discovery listing of every listener of every pod (the CLI's, often the
// largest part), and each listener's PID and container ID. Objects other
// than *v1alpha1.NodeBindReport pass unchanged.
func NodeBindReport(obj any) (any, error) {
	r, ok := obj.(*v1alpha1.NodeBindReport)
	if !ok {
		return obj, nil
	}
	r.ManagedFields = nil
	r.Annotations = nil
	st := &r.Status
	st.Discovery = nil
	st.Conditions = nil
	st.Errors = nil
	for i := range st.Pods {
		for j := range st.Pods[i].Listeners {
			l := &st.Pods[i].Listeners[j]
			l.PID, l.ContainerID = 0, ""
		}
	}
	return r, nil
}
