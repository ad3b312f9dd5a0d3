package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// installHeader heads install.yaml and install-agent.yaml.
func (r *release) installHeader(what, file string, images []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# loopguard %s: %s\n#   kubectl apply --server-side -f %s\n", r.version, what, file)
	b.WriteString("# The image is pinned to the version's tag, so that `kind load image-archive`\n")
	b.WriteString("# and `ctr images import` serve it; once pushed, its digest is:\n")
	for _, i := range images {
		fmt.Fprintf(&b, "#   %s\n", i)
	}
	return b.String()
}

// imageDigestRef is the image's reference@digest from images.txt.
func (r *release) imageDigestRef(repo string) (string, error) {
	b, err := os.ReadFile(filepath.Join(r.out, "images.txt"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, r.imageRef(repo)+"@") {
			return strings.Fields(l)[0], nil
		}
	}
	return "", fmt.Errorf("images.txt has no %s", r.imageRef(repo))
}

// writeInstall renders config/default (install.yaml, by
// hack/render-install.sh, what make build-installer runs) and config/agent
// (install-agent.yaml) with the release's images.
func (r *release) writeInstall(ctx context.Context) error {
	img := r.imageRef("loopguard")
	digest, err := r.imageDigestRef("loopguard")
	if err != nil {
		return err
	}
	y, err := runIn(ctx, r.root, []string{"IMG=" + img}, filepath.Join(r.root, "hack", "render-install.sh"))
	if err != nil {
		return err
	}
	head := r.installHeader("the manager, its webhook and the CRDs", "install.yaml", []string{digest})
	if err := os.WriteFile(filepath.Join(r.out, "install.yaml"), append([]byte(head), y...), 0o644); err != nil {
		return err
	}

	agentDigest, err := r.imageDigestRef("loopguard-agent")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Join(r.root, "bin"), "release-agent-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base, err := filepath.Rel(dir, filepath.Join(r.root, "config", "agent"))
	if err != nil {
		return err
	}
	k := fmt.Sprintf("resources:\n- %s\nimages:\n- name: loopguard-agent\n  newName: %q\n  newTag: %q\n", base, r.registry+"/loopguard-agent", r.version)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return err
	}
	y, err = runIn(ctx, r.root, nil, "go", "tool", "kustomize", "build", dir)
	if err != nil {
		return err
	}
	head = r.installHeader("the node agent (optional, after install.yaml; docs/quickstart.md)", "install-agent.yaml", []string{agentDigest})
	return os.WriteFile(filepath.Join(r.out, "install-agent.yaml"), append([]byte(head), y...), 0o644)
}

// writeChart packages dist/chart with version X.Y.Z, appVersion vX.Y.Z and
// the release's image repositories as defaults.
func (r *release) writeChart(ctx context.Context) error {
	dir := filepath.Join(r.work, "chart", "loopguard")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := copyDir(filepath.Join(r.root, "dist", "chart"), dir); err != nil {
		return err
	}
	values := filepath.Join(dir, "values.yaml")
	b, err := os.ReadFile(values)
	if err != nil {
		return err
	}
	v := string(b)
	for _, repo := range []string{"loopguard", "loopguard-agent"} {
		old := fmt.Sprintf("repository: %q\n", repo)
		if strings.Count(v, old) != 1 {
			return fmt.Errorf("dist/chart/values.yaml: want one %q, found %d", strings.TrimSpace(old), strings.Count(v, old))
		}
		v = strings.Replace(v, old, fmt.Sprintf("repository: %q\n", r.registry+"/"+repo), 1)
	}
	if err := os.WriteFile(values, []byte(v), 0o644); err != nil {
		return err
	}
	_, err = runIn(ctx, r.root, nil, r.helm, "package", dir, "--destination", r.out,
		"--version", strings.TrimPrefix(r.version, "v"), "--app-version", r.version)
	return err
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

var krewTemplate = template.Must(template.New("krew").Parse(`# krew plugin manifest of kubectl-loopguard {{.Version}} (make release).
# Install from the release's archives before it is published:
#   kubectl krew install --manifest=krew/loopguard.yaml --archive=kubectl-loopguard_{{.Version}}_<os>_<arch>.tar.gz
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: loopguard
spec:
  version: {{.Version}}
  homepage: https://github.com/loopguard/loopguard
  shortDescription: Find exposed loopback-only ports in manifests and clusters
  description: |
    loopguard enforces "loopback-only" ports: a LoopbackService or
    ClusterLoopbackService declares ports that the selected pods serve on
    127.0.0.1 only. This plugin runs the same rules as loopguard's admission
    webhook outside the cluster:

      kubectl loopguard check -f deploy/      judge manifests (e.g. in a pull request)
      kubectl loopguard audit -A              report what a cluster already exposes

    It reports containerPorts, hostPorts, hostNetwork pods and Services that
    expose a protected port, NetworkPolicies that re-open one, with the field,
    the policy and the fix. audit needs only the CRDs and get/list permissions.
  caveats: |
    ` + "`kubectl loopguard audit`" + ` needs the loopguard CRDs in the cluster;
    the operator itself is optional (docs/quickstart.md).
  platforms:
{{- range .Platforms}}
  - selector:
      matchLabels:
        os: {{.OS}}
        arch: {{.Arch}}
    uri: https://github.com/loopguard/loopguard/releases/download/{{$.Version}}/{{.Archive}}
    sha256: "{{.SHA256}}"
    bin: kubectl-loopguard
    files:
    - from: kubectl-loopguard
      to: .
    - from: LICENSE
      to: .
    - from: README.md
      to: .
{{- end}}
`))

// writeKrew writes krew/loopguard.yaml with each archive's real sha256.
func (r *release) writeKrew(context.Context) error {
	type plat struct{ OS, Arch, Archive, SHA256 string }
	data := struct {
		Version   string
		Platforms []plat
	}{Version: r.version}
	for _, p := range allPlatforms {
		a := r.archiveName("kubectl-loopguard", p)
		sum, err := fileSHA256(filepath.Join(r.out, a))
		if err != nil {
			return err
		}
		data.Platforms = append(data.Platforms, plat{p.os, p.arch, a, sum})
	}
	var b strings.Builder
	if err := krewTemplate.Execute(&b, data); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.out, "krew", "loopguard.yaml"), []byte(b.String()), 0o644)
}
