package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// TestRegistrationMemoReusesOnlyWhatWasWritten: the registration's last
// coverage is reused only for the same policies (in any order), the same
// CA and the configuration at the resourceVersion it was found written
// at; every other change computes Desired again.
func TestRegistrationMemoReusesOnlyWhatWasWritten(t *testing.T) {
	sel := func(v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": v}}
	}
	base := []webhookconfig.Policy{{Namespace: "shop", Name: "envoy"}, {Name: "mesh", NamespaceSelector: sel("on")}}
	ca := []byte("ca-1")
	var m registrationMemo
	if _, ok := m.reuse(registrationInputs(base, ca), "10"); ok {
		t.Fatal("an empty memo reused something")
	}
	cov := map[webhookconfig.Key]webhookconfig.Coverage{{Namespace: "shop", Name: "envoy"}: {}}
	m.keep(registrationInputs(base, ca), "10", cov)
	reordered := []webhookconfig.Policy{base[1], base[0]}
	if got, ok := m.reuse(registrationInputs(reordered, ca), "10"); !ok || len(got) != 1 {
		t.Errorf("the same policies in another order at the same resourceVersion were not reused")
	}
	for _, c := range []struct {
		name     string
		policies []webhookconfig.Policy
		ca       []byte
		rv       string
	}{
		{"the configuration was written since", base, ca, "11"},
		{"a policy was added", append(append([]webhookconfig.Policy{}, base...), webhookconfig.Policy{Namespace: "shop", Name: "debug"}), ca, "10"},
		{"a policy was deleted", base[:1], ca, "10"},
		{"a policy moved namespace", []webhookconfig.Policy{{Namespace: "shop2", Name: "envoy"}, base[1]}, ca, "10"},
		{"a cluster policy's selector changed", []webhookconfig.Policy{base[0], {Name: "mesh", NamespaceSelector: sel("off")}}, ca, "10"},
		{"the CA rotated", base, []byte("ca-2"), "10"},
		{"the configuration has no resourceVersion", base, ca, ""},
	} {
		if _, ok := m.reuse(registrationInputs(c.policies, c.ca), c.rv); ok {
			t.Errorf("%s: the last coverage was reused", c.name)
		}
	}
}
