package controllers

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/loopguard/loopguard/api/v1alpha1"
)

// TestDescribePodListeners checks an Event's note names each address and
// stays under the events API's 1 kB limit however many a pod has.
func TestDescribePodListeners(t *testing.T) {
	listener := func(port int32, addr string) v1alpha1.RuntimeListener {
		return v1alpha1.RuntimeListener{Namespace: "shop", Pod: "cart", Node: "n1", Container: "envoy", Process: "envoy",
			Protocol: corev1.ProtocolTCP, Address: addr, Port: port}
	}
	many := make([]v1alpha1.RuntimeListener, 64)
	for i := range many {
		many[i] = listener(int32(15000+i), "0.0.0.0")
	}
	cases := []struct {
		name string
		in   []v1alpha1.RuntimeListener
		want []string
	}{
		{"one", []v1alpha1.RuntimeListener{listener(15000, "0.0.0.0")},
			[]string{"pod shop/cart listens on 0.0.0.0:15000/TCP beyond loopback (container envoy, process envoy, node n1); bind it to 127.0.0.1"}},
		{"IPv6 in brackets, bound to ::1", []v1alpha1.RuntimeListener{listener(15000, "::")},
			[]string{"listens on [::]:15000/TCP", "bind it to ::1"}},
		{"two", []v1alpha1.RuntimeListener{listener(15000, "0.0.0.0"), listener(15001, "10.244.0.7")},
			[]string{"0.0.0.0:15000/TCP", "; pod shop/cart listens on 10.244.0.7:15001/TCP"}},
		{"sixty-four", many, []string{"0.0.0.0:15000/TCP", "more (status.runtime)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := describePodListeners(tc.in)
			g.Expect(len(got)).To(BeNumerically("<=", maxEventNote), fmt.Sprintf("%d bytes", len(got)))
			for _, w := range tc.want {
				g.Expect(got).To(ContainSubstring(w))
			}
			g.Expect(strings.Count(got, "listens on")).To(BeNumerically(">=", 1))
		})
	}
}
