// Package install checks the kustomize install as the Makefile renders it
// (hack/render-install.sh behind make build-installer, deploy and
// undeploy), with a fake kubectl that records what it is given.
package install

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var root = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

// makeWithFakeKubectl runs `make target vars...` with a kubectl on PATH
// that writes its stdin and arguments to files, and returns the objects
// kubectl was given and its arguments.
func makeWithFakeKubectl(t *testing.T, target string, vars ...string) ([]map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	fake := "#!/bin/sh\necho \"$@\" > " + dir + "/args\ncat > " + dir + "/stdin\n"
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-s", target}, vars...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out.String())
	}
	stdin, err := os.ReadFile(filepath.Join(dir, "stdin"))
	if err != nil {
		t.Fatalf("make %s did not call kubectl: %v\n%s", target, err, out.String())
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	return decode(t, stdin), strings.TrimSpace(string(args))
}

func decode(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []map[string]any
	for {
		var o map[string]any
		if err := d.Decode(&o); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

func images(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		if o["kind"] != "Deployment" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		tmpl, _ := spec["template"].(map[string]any)
		pspec, _ := tmpl["spec"].(map[string]any)
		cs, _ := pspec["containers"].([]any)
		for _, c := range cs {
			if img, ok := c.(map[string]any)["image"].(string); ok {
				out = append(out, img)
			}
		}
	}
	return out
}

// A numeric tag (1.10, 20261201) is a tag, not a number: written unquoted
// into the kustomization, 1.10 became 1.1.
func TestDeployNumericImageTag(t *testing.T) {
	for _, img := range []string{"registry.example/loopguard:1.10", "registry.example:5000/team/loopguard:20261201", "loopguard:v0.1.0"} {
		objs, args := makeWithFakeKubectl(t, "deploy", "IMG="+img)
		if !strings.HasPrefix(args, "apply") {
			t.Errorf("make deploy ran kubectl %s", args)
		}
		got := images(objs)
		if len(got) != 1 || got[0] != img {
			t.Errorf("make deploy IMG=%s: manager images %q, want [%s]", img, got, img)
		}
	}
}

// undeploy keeps every CRD, so that no policy and no report is deleted
// (docs/upgrade.md).
func TestUndeployKeepsEveryCRD(t *testing.T) {
	objs, args := makeWithFakeKubectl(t, "undeploy")
	if !strings.HasPrefix(args, "delete") {
		t.Errorf("make undeploy ran kubectl %s", args)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o["kind"].(string))
		if o["kind"] == "CustomResourceDefinition" {
			md, _ := o["metadata"].(map[string]any)
			t.Errorf("make undeploy deletes the CRD %v", md["name"])
		}
	}
	if !strings.Contains(strings.Join(kinds, ","), "Deployment") {
		t.Errorf("make undeploy deletes no Deployment: %v", kinds)
	}
}

// PROJECT records, as kubebuilder would, every CRD of config/crd/bases and
// every kind the validating webhooks of config/webhook judge.
func TestProjectListsEveryResource(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "PROJECT"))
	if err != nil {
		t.Fatal(err)
	}
	project := decode(t, b)[0]
	apis, hooks := map[string]bool{}, map[string]bool{}
	for _, r := range project["resources"].([]any) {
		r := r.(map[string]any)
		kind := r["kind"].(string)
		if _, ok := r["api"]; ok {
			apis[kind] = true
		}
		if w, ok := r["webhooks"].(map[string]any); ok && w["validation"] == true {
			hooks[plural(kind)] = true
		}
	}
	crds, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	for _, f := range crds {
		b, _ := os.ReadFile(f)
		crd := decode(t, b)[0]
		kind := crd["spec"].(map[string]any)["names"].(map[string]any)["kind"].(string)
		if !apis[kind] {
			t.Errorf("PROJECT does not list the API %s (%s)", kind, filepath.Base(f))
		}
	}
	b, err = os.ReadFile(filepath.Join(root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range decode(t, b) {
		for _, wh := range cfg["webhooks"].([]any) {
			for _, rule := range wh.(map[string]any)["rules"].([]any) {
				for _, res := range rule.(map[string]any)["resources"].([]any) {
					res := strings.Split(res.(string), "/")[0]
					if !hooks[res] {
						t.Errorf("PROJECT does not list the webhook on %s", res)
					}
				}
			}
		}
	}
}

// plural is the resource of a kind, for the kinds loopguard judges.
func plural(kind string) string {
	k := strings.ToLower(kind)
	if strings.HasSuffix(k, "s") {
		return k
	}
	return k + "s"
}
