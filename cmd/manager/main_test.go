package main

import (
	"strings"
	"testing"
)

func TestPodNamespaceFromDownwardAPI(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "loopguard-system")
	ns, err := podNamespace()
	if err != nil || ns != "loopguard-system" {
		t.Fatalf("podNamespace() = %q, %v", ns, err)
	}
}

func TestWebhookClientAuthFlags(t *testing.T) {
	if a, err := webhookClientAuth("", ""); a != nil || err != nil {
		t.Fatalf("no flags: %v, %v; want no client authentication", a, err)
	}
	if _, err := webhookClientAuth("", "kube-apiserver-webhook-client"); err == nil {
		t.Fatal("--webhook-client-names without --webhook-client-ca was accepted")
	}
	if _, err := webhookClientAuth("/nonexistent/ca.crt", ""); err == nil || !strings.Contains(err.Error(), "/nonexistent/ca.crt") {
		t.Fatalf("unreadable CA: %v, want an error naming the file", err)
	}
}
