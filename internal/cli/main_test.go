package cli

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/loopguard/loopguard/test/testenv"
)

// The audit tests run against a real etcd and kube-apiserver with
// loopguard's CRDs (test/testenv) and no loopguard manager: audit must
// work without the operator. The control plane starts on first use, so the
// check tests (pure) need none; TestMain stops it.
var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "failed to stop the test control plane: %v\n", err)
		}
	}
	os.Exit(code)
}

// controlPlane returns the shared control plane, starting it once. A test
// that cannot get one fails (it never skips).
func controlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		// No manager: no webhook refuses the violating objects the audit
		// tests need.
		env, envErr = testenv.Start(testenv.Options{})
	})
	if envErr != nil {
		t.Fatalf("cannot start the test control plane: %v", envErr)
	}
	return env
}
