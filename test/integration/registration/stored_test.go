package registration

import (
	"context"
	"reflect"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhookmanifests "github.com/loopguard/loopguard/config/webhook"
	"github.com/loopguard/loopguard/internal/webhookconfig"
)

// TestDesiredIsWhatTheAPIServerStores: the registration controller updates
// its configuration when the stored webhooks differ from
// webhookconfig.Desired, so Desired must be exactly what the API server
// stores, defaults included; a field the API server defaults and Desired
// leaves unset made every reconcile an update that changed nothing (at
// 2,000 policies, 1.6 no-op updates a second of an 89-webhook
// configuration). The API server's own defaulting is the reference: a
// dry-run create of the desired webhooks must come back unchanged.
func TestDesiredIsWhatTheAPIServerStores(t *testing.T) {
	templates, err := webhookmanifests.Templates()
	if err != nil {
		t.Fatal(err)
	}
	url := "https://127.0.0.1:9443"
	for _, tc := range []struct {
		name     string
		policies []webhookconfig.Policy
	}{
		{"no policy", nil},
		{"namespaced and cluster policies", []webhookconfig.Policy{
			{Namespace: "shop", Name: "admin"},
			{Name: "debug", NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "apps"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpExists}}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desired, err := webhookconfig.Desired(tc.policies, webhookconfig.Options{Templates: templates,
				ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: []byte("ca")},
				Excluded:     []string{"kube-system", "loopguard-system"}})
			if err != nil {
				t.Fatal(err)
			}
			vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "desired-is-stored"},
				Webhooks: desired.Webhooks}
			if err := env.Client.Create(context.Background(), vwc, client.DryRunAll); err != nil {
				t.Fatalf("dry-run create of the desired webhooks: %v", err)
			}
			if len(vwc.Webhooks) != len(desired.Webhooks) {
				t.Fatalf("stored %d webhooks, desired %d", len(vwc.Webhooks), len(desired.Webhooks))
			}
			for i := range desired.Webhooks {
				stored, want := reflect.ValueOf(vwc.Webhooks[i]), reflect.ValueOf(desired.Webhooks[i])
				for f := range stored.NumField() {
					if !equality.Semantic.DeepEqual(stored.Field(f).Interface(), want.Field(f).Interface()) {
						t.Errorf("webhook %s: the API server stores %s %+v, Desired says %+v", desired.Webhooks[i].Name,
							stored.Type().Field(f).Name, stored.Field(f).Interface(), want.Field(f).Interface())
					}
				}
			}
		})
	}
}
