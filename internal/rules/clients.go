package rules

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// ReasonUnexpectedClient: a process that the policy does not expect is
// connected to a protected port on loopback, as the node agent sampled it.
// The same reason as the RuntimeVerified condition's and the Event's
// (v1alpha1.ReasonUnexpectedClient).
const ReasonUnexpectedClient = "UnexpectedClient"

// ClientFinding is one unexpected client of a protected port.
type ClientFinding struct {
	Port int32
	// Container is the client's container; empty with Outside.
	Container string
	Outside   bool
	Process   string
	// Field is the policy's field that the client contradicts
	// (spec.ports[i].clients).
	Field   string
	Message string
}

// UnexpectedClients judges the clients an agent saw connected to a pod's
// protected loopback ports (NodeBindReport status.pods[].clients) against
// the policy's ports: a client in a container that no covering port's
// clients lists, when every covering port lists some, or outside the pod's
// containers, whatever the ports say, is a finding. Clients of ports the
// policy does not protect are not its concern. Pure: the agent observes,
// this decides.
func UnexpectedClients(ports []v1alpha1.LoopbackPort, clients []v1alpha1.BindClient) []ClientFinding {
	var out []ClientFinding
	for _, c := range clients {
		var covering []int
		for i, p := range ports {
			if p.Covers(corev1.ProtocolTCP, c.Port) {
				covering = append(covering, i)
			}
		}
		if len(covering) == 0 {
			continue
		}
		fld := field.NewPath("spec", "ports").Index(covering[0]).Child("clients").String()
		proc := c.Process
		if proc == "" {
			proc = "an unknown process"
		}
		if c.Outside {
			out = append(out, ClientFinding{Port: c.Port, Outside: true, Process: c.Process, Field: fld,
				Message: fmt.Sprintf("port %d/TCP: %s outside the pod's containers is connected on loopback (a port-forward or a process of the node)", c.Port, proc)})
			continue
		}
		allowed, anyContainer := []string{}, false
		for _, i := range covering {
			if ports[i].Clients == nil {
				anyContainer = true
				break
			}
			allowed = append(allowed, ports[i].Clients...)
		}
		if anyContainer || slices.Contains(allowed, c.Container) {
			continue
		}
		who := fmt.Sprintf("container %q", c.Container)
		if c.Container == "" {
			who = "an unknown container"
		}
		out = append(out, ClientFinding{Port: c.Port, Container: c.Container, Process: c.Process, Field: fld,
			Message: fmt.Sprintf("port %d/TCP: %s (%s) is connected on loopback, but %s lists only %q", c.Port, who, proc, fld, allowed)})
	}
	return out
}
