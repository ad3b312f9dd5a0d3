package webhooks_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/loopguard/loopguard/internal/testenv"
)

// env is the control plane of this package's integration tests: a real
// etcd and kube-apiserver with loopguard's manager serving the webhook.
var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs only FuzzAdmissionReview, which needs no
		// control plane; an etcd started here would outlive the worker
		// when the fuzzer stops it, and hang the coordinator.
		os.Exit(m.Run())
	}
	var err error
	if env, err = testenv.Start(testenv.Options{Manager: true}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the test control plane: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "warning: stopping the control plane: %v\n", err)
	}
	os.Exit(code)
}
