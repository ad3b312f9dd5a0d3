//go:build quickstart

// Package quickstart follows docs/quickstart.md on the dev cluster as if it
// were any cluster: the images come from the release's archives (imported
// into the node's containerd as `kind load image-archive` does, no
// registry), loopguard is installed from the release's install.yaml and,
// separately, from its chart, and each time a protected pod is refused.
//
//	make release VERSION=v0.1.0
//	DEV_NODE=require hack/dev.sh up
//	RELEASE_DIR=dist/release HELM=bin/helm go test -tags quickstart ./test/quickstart/ -v -count=1
//
// (make test-quickstart does all three.) Like test/incluster, it stops the
// host manager of hack/dev.sh first and brings it back at the end.
//
// Network rule: only the API server (the kubeconfig) and the node's
// containerd socket.
package quickstart

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loopguard/loopguard/test/devcluster"
)

const (
	ns            = "loopguard-system"
	registry      = "ghcr.io/loopguard"
	webhookConfig = "loopguard-validating-webhook-configuration"
	hostWebhook   = "validating-webhook-configuration" // hack/dev.sh's
)

var run = devcluster.Run

func kubectl(t *testing.T, stdin string, args ...string) devcluster.Result {
	t.Helper()
	return devcluster.Kubectl(t, stdin, args...)
}

func must(t *testing.T, stdin string, args ...string) devcluster.Result {
	t.Helper()
	return devcluster.MustKubectl(t, stdin, args...)
}

func releaseDir(t *testing.T) (string, string) {
	t.Helper()
	dir := os.Getenv("RELEASE_DIR")
	if dir == "" {
		dir = filepath.Join(devcluster.RepoRoot(), "dist", "release")
	}
	charts, _ := filepath.Glob(filepath.Join(dir, "loopguard-*.tgz"))
	if len(charts) != 1 {
		t.Fatalf("%s: no release (make release VERSION=vX.Y.Z)", dir)
	}
	return dir, "v" + strings.TrimSuffix(strings.TrimPrefix(filepath.Base(charts[0]), "loopguard-"), ".tgz")
}

func helm(t *testing.T, args ...string) devcluster.Result {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		h = filepath.Join(devcluster.RepoRoot(), "bin", "helm")
	}
	return run(5*time.Minute, devcluster.KubeconfigEnv(), "", h, args...)
}

func TestMain(m *testing.M) {
	if !devcluster.FileExists(devcluster.Kubeconfig()) || !devcluster.FileExists(filepath.Join(devcluster.DevDir(), "node-before", "complete")) {
		fmt.Fprintln(os.Stderr, "the quickstart test needs the dev cluster with its node: DEV_NODE=require hack/dev.sh up (as root)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestQuickstart(t *testing.T) {
	dir, version := releaseDir(t)
	importImages(t, dir, version)
	stopHostManager(t)
	t.Cleanup(func() { restoreHostManager(t) })

	t.Run("InstallYAML", func(t *testing.T) {
		removeInstall(t)
		must(t, "", "apply", "--server-side", "-f", filepath.Join(dir, "install.yaml"))
		waitReady(t, registry+"/loopguard:"+version)
		protectedPodRefused(t, version)
		removeInstall(t)
	})
	t.Run("HelmChart", func(t *testing.T) {
		removeInstall(t)
		// The CRDs exist (hack/dev.sh, install.yaml): Helm adopts them, as
		// docs/quickstart.md says.
		for _, crd := range []string{"loopbackservices.loopguard.io", "clusterloopbackservices.loopguard.io", "nodebindreports.loopguard.io"} {
			must(t, "", "label", "--overwrite", "crd", crd, "app.kubernetes.io/managed-by=Helm")
			must(t, "", "annotate", "--overwrite", "crd", crd, "meta.helm.sh/release-name=loopguard", "meta.helm.sh/release-namespace="+ns)
		}
		must(t, "", "create", "namespace", ns)
		must(t, "", "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
		chart := filepath.Join(dir, "loopguard-"+strings.TrimPrefix(version, "v")+".tgz")
		if r := helm(t, "install", "loopguard", chart, "-n", ns); r.Err != nil {
			t.Fatalf("helm install: %s", r)
		} else {
			t.Logf("helm install:\n%s", r.Stdout)
		}
		waitReady(t, registry+"/loopguard:"+version)
		protectedPodRefused(t, version)
		if r := helm(t, "uninstall", "loopguard", "-n", ns, "--wait"); r.Err != nil {
			t.Errorf("helm uninstall: %s", r)
		}
		if r := kubectl(t, "", "get", "crd", "loopbackservices.loopguard.io"); r.Err != nil {
			t.Errorf("helm uninstall deleted the CRDs: %s", r)
		}
		removeInstall(t)
	})
}

// importImages does what `kind load image-archive` does on a kind node:
// ctr images import --all-platforms of each release archive into the
// node's containerd (namespace k8s.io), then checks the tag is there.
func importImages(t *testing.T, dir, version string) {
	sock := filepath.Join(devcluster.DevDir(), "node", "containerd", "containerd.sock")
	for img, repo := range map[string]string{"manager": "loopguard", "listener": "loopguard-listener"} {
		r := run(5*time.Minute, nil, "", "ctr", "--address", sock, "-n", "k8s.io", "images", "import", "--all-platforms", "--digests",
			filepath.Join(dir, "images", img+".oci.tar"))
		if r.Err != nil {
			t.Fatalf("ctr images import %s: %s", img, r)
		}
		ref := registry + "/" + repo + ":" + version
		ls := run(time.Minute, nil, "", "ctr", "--address", sock, "-n", "k8s.io", "images", "ls", "-q", "name=="+ref)
		if ls.Err != nil || strings.TrimSpace(ls.Stdout) != ref {
			t.Fatalf("after the import containerd has no %s: %s", ref, ls)
		}
		t.Logf("imported %s from images/%s.oci.tar", ref, img)
	}
}

func waitReady(t *testing.T, image string) {
	t.Helper()
	if r := kubectl(t, "", "-n", ns, "rollout", "status", "deployment/loopguard-controller-manager", "--timeout=180s"); r.Err != nil {
		t.Log(kubectl(t, "", "-n", ns, "get", "pods", "-o", "wide").Stdout)
		t.Log(kubectl(t, "", "-n", ns, "describe", "pods").Stdout)
		t.Fatalf("the manager did not become ready: %s", r)
	}
	imgs := must(t, "", "-n", ns, "get", "pods", "-l", "control-plane=controller-manager", "-o", "jsonpath={.items[*].spec.containers[0].image}").Stdout
	for _, i := range strings.Fields(imgs) {
		if i != image {
			t.Errorf("manager pod runs %s, want %s", i, image)
		}
	}
	logs := must(t, "", "-n", ns, "logs", "deployment/loopguard-controller-manager", "--tail=-1").Stdout
	if !strings.Contains(logs, `"version":"`+strings.TrimPrefix(image, registry+"/loopguard:")+`"`) {
		t.Errorf("the manager's startup log does not say its version:\n%.2000s", logs)
	}
}

// protectedPodRefused: a LoopbackService protects 6379 of app=cart; a
// pod that exposes it is refused, one that does not is admitted (through
// the webhook's Service: retried until the endpoints are programmed).
func protectedPodRefused(t *testing.T, version string) {
	t.Helper()
	tns := devcluster.Namespace(t, "quickstart")
	must(t, `apiVersion: loopguard.io/v1alpha1
kind: LoopbackService
metadata: {name: cart-redis}
spec:
  podSelector: {matchLabels: {app: cart}}
  ports: [{port: 6379, protocol: TCP, name: redis}]
`, "-n", tns, "apply", "-f", "-")
	good := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"cart-ok","labels":{"app":"cart"}},"spec":{"containers":[{"name":"c","image":"%s/loopguard-listener:%s","ports":[{"containerPort":8080}]}]}}`, registry, version)
	bad := strings.ReplaceAll(strings.ReplaceAll(good, "cart-ok", "cart-exposed"), `"containerPort":8080`, `"containerPort":6379`)
	devcluster.Eventually(t, 90*time.Second, func() string {
		r := kubectl(t, bad, "-n", tns, "create", "-f", "-")
		if r.Err == nil {
			kubectl(t, "", "-n", tns, "delete", "pod", "cart-exposed", "--wait=false")
			return "the pod exposing the protected port 6379 was admitted (policy not enforced yet?)"
		}
		if !strings.Contains(r.Stderr, "denied the request") || !strings.Contains(r.Stderr, "6379") {
			return "not refused by loopguard yet: " + r.String()
		}
		t.Logf("refused, as the quickstart says:\n%s", strings.TrimSpace(r.Stderr))
		return ""
	})
	must(t, good, "-n", tns, "create", "-f", "-")
	if r := kubectl(t, "", "get", "lbs", "-n", tns, "cart-redis"); r.Err != nil || !strings.Contains(r.Stdout, "cart-redis") {
		t.Errorf("kubectl get lbs: %s", r)
	} else {
		t.Logf("kubectl get lbs:\n%s", r.Stdout)
	}
}

func stopHostManager(t *testing.T) {
	must(t, "", "delete", "validatingwebhookconfiguration", hostWebhook, "--ignore-not-found")
	b, err := os.ReadFile(filepath.Join(devcluster.DevDir(), "run", "manager.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	if syscall.Kill(pid, syscall.SIGTERM) == nil {
		deadline := time.Now().Add(20 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // polling the process: no event to wait on
		}
	}
}

// removeInstall deletes an install but the CRDs (docs/quickstart.md,
// "Uninstall"): the webhook configuration first.
func removeInstall(t *testing.T) {
	t.Helper()
	kubectl(t, "", "delete", "validatingwebhookconfiguration", webhookConfig, "--ignore-not-found")
	kubectl(t, "", "delete", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/part-of=loopguard", "--ignore-not-found")
	if r := kubectl(t, "", "delete", "namespace", ns, "--ignore-not-found", "--timeout=120s"); r.Err != nil {
		t.Errorf("deleting namespace %s: %s", ns, r)
	}
}

func restoreHostManager(t *testing.T) {
	if os.Getenv("QUICKSTART_KEEP") != "" {
		return
	}
	removeInstall(t)
	if r := run(10*time.Minute, []string{"DEV_NODE=require"}, "", filepath.Join(devcluster.RepoRoot(), "hack", "dev.sh"), "up"); r.Err != nil {
		t.Errorf("hack/dev.sh up (restoring the host manager): %s", r)
	}
}
