package webhooks_test

import (
	"flag"
	"os"
	"testing"

	"github.com/loopguard/loopguard/test/testenv"
)

// env is the control plane of this package's integration tests: a real
// etcd and kube-apiserver with loopguard's manager serving the webhook and
// registering it where policies apply, as a deployed manager does.
var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs only FuzzAdmissionReview, which needs no
		// control plane; an etcd started here would outlive the worker
		// when the fuzzer stops it, and hang the coordinator.
		os.Exit(m.Run())
	}
	testenv.Main(m, testenv.Options{Manager: true}, &env)
}
