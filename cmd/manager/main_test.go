package main

import "testing"

func TestPodNamespaceFromDownwardAPI(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "loopguard-system")
	ns, err := podNamespace()
	if err != nil || ns != "loopguard-system" {
		t.Fatalf("podNamespace() = %q, %v", ns, err)
	}
}
