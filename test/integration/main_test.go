// Package integration holds tests of loopguard's shipped configuration
// (config/) against a real kube-apiserver: admission policies and RBAC as
// the API server enforces them, with real tokens.
package integration

import (
	"testing"

	"github.com/loopguard/loopguard/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}, &env) }
