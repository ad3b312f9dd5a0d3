// Package corpus runs `loopguard check` over real manifests nobody on this
// project wrote: ../shared/corpus/manifests (beside the repository, see its
// SOURCES.md; never copied here), with the policies of testdata/policies,
// written for the loopback-only ports those projects really have. Each
// verdict of the goldens (testdata/golden) was checked by reading the
// manifests; go test ./test/corpus/ -update rewrites them.
package corpus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopguard/loopguard/test/golden"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/loopguard/loopguard/internal/cli"
)

// corpus is ../shared/corpus/manifests from the repository root;
// LOOPGUARD_CORPUS names another shared/corpus (a git worktree elsewhere).
// Outputs name it $CORPUS, so the goldens hold no path of the machine.
var corpus = corpusDir()

func corpusDir() string {
	if d := os.Getenv("LOOPGUARD_CORPUS"); d != "" {
		return filepath.Join(d, "manifests")
	}
	return "../../../shared/corpus/manifests"
}

const policies = "testdata/policies"

// runs are the checks, one per project (kong: one per release, both in
// namespace kong), each with the exit status whose findings the golden
// holds.
var runs = []struct {
	name string
	args []string
	code int
}{
	// Envoy's admin port and pilot-agent's are never declared (only
	// 15090 and 15021 are), and Istio injects no sidecar into the
	// hostNetwork pod (hello-host-network has no istio-proxy and no
	// tlsMode label): nothing to report.
	{"istio", []string{"-f", corpus + "/istio"}, cli.ExitOK},
	// linkerd-proxy's outbound 4140 is never declared (4143 inbound and
	// 4191 admin are).
	{"linkerd", []string{"-f", corpus + "/linkerd"}, cli.ExitOK},
	// blackbox-exporter (:19115) and prometheus-operator (:8080) listen on
	// every address behind kube-rbac-proxy and declare the port: the proxy
	// can be bypassed (Deny); node-exporter's 127.0.0.1:9101 on the
	// node's network (Audit).
	{"kube-prometheus", []string{"-f", corpus + "/kube-prometheus"}, cli.ExitViolations},
	{"kong-2.8", []string{"-f", corpus + "/kong/kic-2.8-all-in-one-dbless.yaml"}, cli.ExitOK},
	// KIC 2.10: admin on 0.0.0.0:8444 with a Service (Deny).
	{"kong-2.10", []string{"-f", corpus + "/kong/kic-2.10-all-in-one-dbless.yaml"}, cli.ExitViolations},
	// The agent and the operator run with hostNetwork: their 127.0.0.1
	// ports are on the node's loopback (Audit, as the policies ask).
	{"cilium", []string{"-f", corpus + "/cilium"}, cli.ExitOK},
	// Typha (hostNetwork) has its health port on the node's loopback
	// (Audit).
	{"calico", []string{"-f", corpus + "/calico"}, cli.ExitOK},
	// Envoy's admin 9001 is not declared; hostPort 80/443 are not
	// protected: nothing to report.
	{"contour", []string{"-f", corpus + "/contour"}, cli.ExitOK},
	// No policy of ours applies to these: each is read whole, without an
	// error.
	{"argocd", []string{"-f", corpus + "/argocd"}, cli.ExitOK},
	{"cert-manager", []string{"-f", corpus + "/cert-manager"}, cli.ExitOK},
	{"guestbook", []string{"-f", corpus + "/guestbook", "-f", corpus + "/guestbook-go"}, cli.ExitOK},
	{"ingress-nginx", []string{"-f", corpus + "/ingress-nginx"}, cli.ExitOK},
	// A Helm template as committed: an error with its line and the hint.
	{"unrendered", []string{"-f", corpus + "/_unrendered"}, cli.ExitError},
}

func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Fatalf("the corpus of real manifests must be at %s (../shared/corpus beside the repository, or LOOPGUARD_CORPUS=DIR/shared/corpus): %v", corpus, err)
	}
	covered := map[string]bool{}
	for _, r := range runs {
		for i, a := range r.args {
			if i > 0 && r.args[i-1] == "-f" {
				rel, _ := filepath.Rel(corpus, a)
				covered[strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]] = true
			}
		}
	}
	dirs, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && !covered[d.Name()] {
			t.Errorf("corpus directory %s is checked by no run", d.Name())
		}
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			args := append([]string{"check", "--policies", policies}, r.args...)
			var out, errOut bytes.Buffer
			streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			code := cli.Execute(context.Background(), cli.NewRootCommand("loopguard", streams), args, &errOut)
			if code != r.code {
				t.Errorf("exit status %d, want %d\n%s%s", code, r.code, out.String(), errOut.String())
			}
			got := strings.ReplaceAll(fmt.Sprintf("$ loopguard %s\n%s--- stderr\n%s--- exit status %d\n", strings.Join(args, " "), out.String(), errOut.String(), code), corpus, "$CORPUS")
			golden.Check(t, filepath.Join("testdata", "golden", r.name+".golden"), got, "./test/corpus/")
		})
	}
}
