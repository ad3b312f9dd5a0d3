//go:build release

// Package release unpacks a release that `make release` wrote and checks
// every piece of it:
//
//	make release VERSION=v0.1.0
//	RELEASE_DIR=dist/release HELM=bin/helm go test -tags release ./test/release/
//
// (make test-release does both.) The version is the one of the chart in
// the directory.
package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

const registry = "ghcr.io/loopguard"

type platform struct{ os, arch string }

var (
	linux = []platform{{"linux", "amd64"}, {"linux", "arm64"}}
	all   = []platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}
	// The archived binaries and their platforms.
	archived = map[string][]platform{"manager": linux, "agent": linux, "loopguard": all, "kubectl-loopguard": all}
	// The images: binary -> repository.
	images = map[string]string{"manager": "loopguard", "agent": "loopguard-agent", "listener": "loopguard-listener"}
)

// dir and version of the release under test.
func release(t *testing.T) (string, string) {
	t.Helper()
	dir := os.Getenv("RELEASE_DIR")
	if dir == "" {
		dir = filepath.Join(root, "dist", "release")
	}
	charts, _ := filepath.Glob(filepath.Join(dir, "loopguard-*.tgz"))
	if len(charts) != 1 {
		t.Fatalf("%s: want one loopguard-<version>.tgz, found %v (run make release VERSION=vX.Y.Z)", dir, charts)
	}
	v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(charts[0]), "loopguard-"), ".tgz")
	return dir, "v" + v
}

func helm(t *testing.T) string {
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	return filepath.Join(root, "bin", "helm")
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
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

func field(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[k]
		case int:
			l, _ := o.([]any)
			if k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

// untar reads a tar (gzipped when gz) into name -> content.
func untar(t *testing.T, path string, gz bool) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode&0o111 != 0 {
			files[h.Name+"*"] = nil // executable marker
		}
		files[h.Name] = b
	}
}

// checkBinary checks that b is an executable of platform p.
func checkBinary(t *testing.T, what string, b []byte, p platform) {
	t.Helper()
	want := map[string]any{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	if p.os == "darwin" {
		want = map[string]any{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}
		f, err := macho.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: not a Mach-O binary: %v", what, err)
			return
		}
		if f.Cpu != want[p.arch] {
			t.Errorf("%s: CPU %v, want %v", what, f.Cpu, want[p.arch])
		}
		return
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Errorf("%s: not an ELF binary: %v", what, err)
		return
	}
	if f.Machine != want[p.arch] {
		t.Errorf("%s: machine %v, want %v", what, f.Machine, want[p.arch])
	}
	if slices.ContainsFunc(f.Progs, func(pr *elf.Prog) bool { return pr.Type == elf.PT_INTERP }) {
		t.Errorf("%s: dynamically linked (the images have no libc)", what)
	}
}

func TestChecksums(t *testing.T) {
	dir, _ := release(t)
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(read(t, filepath.Join(dir, "checksums.txt"))))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt: bad line %q", sc.Text())
		}
		listed[name] = true
		if got := sha(read(t, filepath.Join(dir, name))); got != sum {
			t.Errorf("%s: sha256 %s, checksums.txt says %s", name, got, sum)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "checksums.txt" && !listed[rel] {
			t.Errorf("%s is not in checksums.txt", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Each binary, for each platform, archived with LICENSE and README.md, the
// version stamped in.
func TestArchives(t *testing.T) {
	dir, version := release(t)
	license := read(t, filepath.Join(root, "LICENSE"))
	for bin, platforms := range archived {
		for _, p := range platforms {
			name := bin + "_" + version + "_" + p.os + "_" + p.arch + ".tar.gz"
			files := untar(t, filepath.Join(dir, name), true)
			var names []string
			for n := range files {
				names = append(names, n)
			}
			slices.Sort(names)
			if want := []string{"LICENSE", "README.md", bin, bin + "*"}; !slices.Equal(names, want) {
				t.Errorf("%s holds %v, want %v (* = executable)", name, names, want)
				continue
			}
			if !bytes.Equal(files["LICENSE"], license) || !bytes.Contains(license, []byte("Apache License")) {
				t.Errorf("%s: LICENSE is not the repository's Apache-2.0", name)
			}
			checkBinary(t, name, files[bin], p)
			if !bytes.Contains(files[bin], []byte(version)) {
				t.Errorf("%s: %s does not carry the version %s", name, bin, version)
			}
		}
	}
}

// The binaries of this machine's platform say their version.
func TestVersionStamped(t *testing.T) {
	dir, version := release(t)
	tmp := t.TempDir()
	for _, bin := range []string{"loopguard", "kubectl-loopguard", "manager", "agent"} {
		files := untar(t, filepath.Join(dir, bin+"_"+version+"_linux_amd64.tar.gz"), true)
		path := filepath.Join(tmp, bin)
		if err := os.WriteFile(path, files[bin], 0o755); err != nil {
			t.Fatal(err)
		}
		var cmd *exec.Cmd
		var want string
		switch bin {
		case "loopguard", "kubectl-loopguard":
			cmd, want = exec.Command(path, "version"), bin+" "+version+" (commit "
		default:
			// Without a cluster they stop at once, after the startup log.
			cmd, want = exec.Command(path), `"version":"`+version+`"`
			cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(tmp, "none"), "KUBERNETES_SERVICE_HOST=", "HOME="+tmp)
		}
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: output lacks %s:\n%s", bin, want, out)
		}
	}
}

func TestKrewManifest(t *testing.T) {
	dir, version := release(t)
	m := decode(t, read(t, filepath.Join(dir, "krew", "loopguard.yaml")))[0]
	if field(m, "kind") != "Plugin" || field(m, "spec", "version") != version {
		t.Fatalf("krew manifest: kind %v, version %v", field(m, "kind"), field(m, "spec", "version"))
	}
	plats := field(m, "spec", "platforms").([]any)
	if len(plats) != len(all) {
		t.Errorf("%d platforms, want %d", len(plats), len(all))
	}
	for i, p := range all {
		pl := plats[i]
		if field(pl, "selector", "matchLabels", "os") != p.os || field(pl, "selector", "matchLabels", "arch") != p.arch {
			t.Errorf("platform %d: %v", i, field(pl, "selector"))
		}
		archive := "kubectl-loopguard_" + version + "_" + p.os + "_" + p.arch + ".tar.gz"
		uri, _ := field(pl, "uri").(string)
		if !strings.HasSuffix(uri, "/releases/download/"+version+"/"+archive) {
			t.Errorf("%s: uri %s", p, uri)
		}
		path := filepath.Join(dir, archive)
		if got := sha(read(t, path)); field(pl, "sha256") != got {
			t.Errorf("%s: sha256 %v, archive's %s", p, field(pl, "sha256"), got)
		}
		files := untar(t, path, true)
		if _, ok := files[field(pl, "bin").(string)+"*"]; !ok {
			t.Errorf("%s: bin %v is not an executable of the archive", p, field(pl, "bin"))
		}
		var froms []string
		for _, f := range field(pl, "files").([]any) {
			from := field(f, "from").(string)
			froms = append(froms, from)
			if _, ok := files[from]; !ok {
				t.Errorf("%s: files.from %s is not in the archive", p, from)
			}
		}
		if !slices.Contains(froms, "LICENSE") {
			t.Errorf("%s: krew needs the LICENSE among files", p)
		}
	}
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
}

func blob(t *testing.T, files map[string][]byte, digest string) []byte {
	t.Helper()
	b, ok := files["blobs/"+strings.Replace(digest, ":", "/", 1)]
	if !ok {
		t.Fatalf("blob %s missing", digest)
	}
	if "sha256:"+sha(b) != digest {
		t.Fatalf("blob %s has another digest", digest)
	}
	return b
}

// imageDigests reads images.txt: reference -> index digest.
func imageDigests(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(read(t, filepath.Join(dir, "images.txt")))), "\n") {
		ref, digest, _ := strings.Cut(strings.Fields(l)[0], "@")
		out[ref] = digest
	}
	return out
}

// Each image archive is an OCI layout whose one index, named for
// containerd, lists linux/amd64 and linux/arm64, each with the binary of
// its architecture.
func TestImages(t *testing.T) {
	dir, version := release(t)
	digests := imageDigests(t, dir)
	for bin, repo := range images {
		ref := registry + "/" + repo + ":" + version
		files := untar(t, filepath.Join(dir, "images", bin+".oci.tar"), false)
		if !bytes.Contains(files["oci-layout"], []byte(`"imageLayoutVersion"`)) {
			t.Errorf("%s: no oci-layout", bin)
		}
		var top manifest
		if err := json.Unmarshal(files["index.json"], &top); err != nil || len(top.Manifests) != 1 {
			t.Fatalf("%s: index.json %s (%v)", bin, files["index.json"], err)
		}
		d := top.Manifests[0]
		if d.Annotations["io.containerd.image.name"] != ref || d.Annotations["org.opencontainers.image.ref.name"] != version {
			t.Errorf("%s: annotations %v, want the name %s", bin, d.Annotations, ref)
		}
		if d.MediaType != "application/vnd.oci.image.index.v1+json" || digests[ref] != d.Digest {
			t.Errorf("%s: %s %s, images.txt says %s", bin, d.MediaType, d.Digest, digests[ref])
		}
		var idx manifest
		if err := json.Unmarshal(blob(t, files, d.Digest), &idx); err != nil {
			t.Fatal(err)
		}
		var plats []string
		for _, m := range idx.Manifests {
			p := platform{m.Platform.OS, m.Platform.Architecture}
			plats = append(plats, p.os+"/"+p.arch)
			var im manifest
			if err := json.Unmarshal(blob(t, files, m.Digest), &im); err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Architecture, OS string
				Config           struct {
					Entrypoint []string
					User       string
					Labels     map[string]string
				}
			}
			if err := json.Unmarshal(blob(t, files, im.Config.Digest), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Architecture != p.arch || cfg.OS != p.os || !slices.Equal(cfg.Config.Entrypoint, []string{"/" + bin}) ||
				cfg.Config.Labels["org.opencontainers.image.version"] != version {
				t.Errorf("%s %s: config %+v", bin, p, cfg)
			}
			if len(im.Layers) != 1 {
				t.Fatalf("%s %s: %d layers", bin, p, len(im.Layers))
			}
			layer := blob(t, files, im.Layers[0].Digest)
			lf := filepath.Join(t.TempDir(), "layer.tar")
			if err := os.WriteFile(lf, layer, 0o644); err != nil {
				t.Fatal(err)
			}
			gz := strings.HasSuffix(im.Layers[0].MediaType, "gzip")
			checkBinary(t, bin+" "+p.os+"/"+p.arch, untar(t, lf, gz)[bin], p)
		}
		slices.Sort(plats)
		if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s: index lists %v", bin, plats)
		}
	}
}

func TestSBOMs(t *testing.T) {
	dir, version := release(t)
	for bin := range images {
		var bom struct {
			BOMFormat string `json:"bomFormat"`
			Metadata  struct {
				Component struct{ Name, Version string } `json:"component"`
			} `json:"metadata"`
			Components []struct{ Name, Version string } `json:"components"`
		}
		if err := json.Unmarshal(read(t, filepath.Join(dir, "sbom", bin+".cdx.json")), &bom); err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		var names []string
		for _, c := range bom.Components {
			names = append(names, c.Name)
		}
		want := "k8s.io/apimachinery"
		if bin == "listener" {
			want = "std" // the Go standard library alone
		}
		if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Name != "github.com/loopguard/loopguard" || bom.Metadata.Component.Version != version || !slices.Contains(names, want) {
			t.Errorf("%s: format %q, component %q %q, components %v (want %s)", bin, bom.BOMFormat, bom.Metadata.Component.Name, bom.Metadata.Component.Version, names, want)
		}
	}
}

func deploymentImage(t *testing.T, objs []map[string]any, kind string) string {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind {
			img, _ := field(o, "spec", "template", "spec", "containers", 0, "image").(string)
			return img
		}
	}
	t.Fatalf("no %s", kind)
	return ""
}

// install.yaml, install-agent.yaml and the chart name the same images, the
// release's, with their digests in the header.
func TestInstallAndChartNameTheImages(t *testing.T) {
	dir, version := release(t)
	digests := imageDigests(t, dir)
	mgr, agent := registry+"/loopguard:"+version, registry+"/loopguard-agent:"+version
	install := read(t, filepath.Join(dir, "install.yaml"))
	objs := decode(t, install)
	if got := deploymentImage(t, objs, "Deployment"); got != mgr {
		t.Errorf("install.yaml: image %s, want %s", got, mgr)
	}
	if !bytes.Contains(install, []byte(mgr+"@"+digests[mgr])) {
		t.Errorf("install.yaml: no digest %s in its header", digests[mgr])
	}
	var crds []string
	for _, o := range objs {
		if o["kind"] == "CustomResourceDefinition" {
			crds = append(crds, field(o, "metadata", "name").(string))
		}
	}
	slices.Sort(crds)
	if want := []string{"clusterloopbackservices.loopguard.io", "loopbackservices.loopguard.io", "nodebindreports.loopguard.io"}; !slices.Equal(crds, want) {
		t.Errorf("install.yaml CRDs %v, want %v", crds, want)
	}
	if got := deploymentImage(t, decode(t, read(t, filepath.Join(dir, "install-agent.yaml"))), "DaemonSet"); got != agent {
		t.Errorf("install-agent.yaml: image %s, want %s", got, agent)
	}

	chart := filepath.Join(dir, "loopguard-"+strings.TrimPrefix(version, "v")+".tgz")
	out, err := exec.Command(helm(t), "show", "chart", chart).CombinedOutput()
	if err != nil {
		t.Fatalf("helm show chart: %v\n%s", err, out)
	}
	meta := decode(t, out)[0]
	if meta["version"] != strings.TrimPrefix(version, "v") || meta["appVersion"] != version {
		t.Errorf("chart version %v, appVersion %v", meta["version"], meta["appVersion"])
	}
	if out, err := exec.Command(helm(t), "lint", "--strict", chart).CombinedOutput(); err != nil {
		t.Errorf("helm lint --strict: %v\n%s", err, out)
	}
	out, err = exec.Command(helm(t), "template", "loopguard", chart, "-n", "loopguard-system", "--set", "agent.enabled=true").CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	objs = decode(t, out)
	if got := deploymentImage(t, objs, "Deployment"); got != mgr {
		t.Errorf("chart: manager image %s, install.yaml's %s", got, mgr)
	}
	if got := deploymentImage(t, objs, "DaemonSet"); got != agent {
		t.Errorf("chart: agent image %s, install-agent.yaml's %s", got, agent)
	}
}

// Nothing else lies in the release, so that checksums.txt, the notes and
// the upload list stay what the docs say.
func TestLayout(t *testing.T) {
	dir, version := release(t)
	want := []string{"checksums.txt", "images.txt", "install.yaml", "install-agent.yaml", "krew/loopguard.yaml",
		"loopguard-" + strings.TrimPrefix(version, "v") + ".tgz"}
	for bin, ps := range archived {
		for _, p := range ps {
			want = append(want, bin+"_"+version+"_"+p.os+"_"+p.arch+".tar.gz")
		}
	}
	for bin := range images {
		want = append(want, "images/"+bin+".oci.tar", "sbom/"+bin+".cdx.json")
	}
	var got []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return err
	})
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("release files:\n%v\nwant:\n%v", got, want)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+`).MatchString(version) {
		t.Errorf("version %q", version)
	}
}
