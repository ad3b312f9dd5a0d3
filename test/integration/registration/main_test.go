// Package registration tests the manager's own webhook registration
// against a real kube-apiserver: the configuration follows the policies,
// a policy reports Enforced only once the API server sends it every write
// it judges, and namespaces no policy applies to never reach loopguard.
package registration

import (
	"testing"

	"github.com/loopguard/loopguard/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Options{Manager: true}, &env)
}
