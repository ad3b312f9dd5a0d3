package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPolicyFilesAndTools checks that every file and tool module the harness
// reads, relative to the repository root, is where it looks for it.
func TestPolicyFilesAndTools(t *testing.T) {
	e := &env{opts: options{root: filepath.Join("..", "..", "..")}}
	for engine, names := range map[string][]string{
		"loopguard":  {"loopback-ports.yaml"},
		"gatekeeper": {"sync.yaml", "template.yaml", "constraint.yaml", "endpointslices-constraint.yaml"},
		"kyverno":    {"validatingpolicy.yaml", "validatingpolicy-apicall.yaml", "globalcontext.yaml", "portforward.yaml", "endpointslices.yaml"},
		"vap":        {"policy.yaml", "race.yaml", "access.yaml"},
	} {
		for _, name := range names {
			if b, err := e.policyFile(engine, name); err != nil || len(b) == 0 {
				t.Errorf("policyFile(%s, %s): %d bytes, %v", engine, name, len(b), err)
			}
		}
	}
	for _, tool := range []string{"gatekeeper", "kyverno"} {
		if _, err := os.Stat(filepath.Join(e.opts.root, "bench/peers/tools", tool, "go.mod")); err != nil {
			t.Errorf("tool module %s: %v", tool, err)
		}
	}
}
