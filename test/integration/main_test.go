// Package integration holds tests of loopguard's shipped configuration
// (config/) against a real kube-apiserver: admission policies and RBAC as
// the API server enforces them, with real tokens.
package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/loopguard/loopguard/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(testenv.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the test control plane: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}
