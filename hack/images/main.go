// Command images builds the container images of the dev node without a
// registry and without Docker: each is one static Go binary (CGO_ENABLED=0,
// linux/amd64) in one layer on an empty base, written as a docker-archive
// tarball and imported into the node's containerd with
// `ctr -n k8s.io images import`.
//
//	images build --repo DIR --out DIR [--address SOCK [--namespace k8s.io] [--ctr ctr]] [--skip-go-build]
//
// Images (see specs below):
//
//	loopguard-pause:dev     the pod sandbox image (containerd's sandbox_image)
//	loopguard-listener:dev  the test workload, ./cmd/listener
//	loopguard:dev           the manager, ./cmd/manager, at /manager (only with
//	                        --only manager: `make image`, hack/image.mk)
//	loopguard-agent:dev     the node agent, ./cmd/agent, at /agent (only with
//	                        --only agent: `make image-agent`)
//
// The build is reproducible (fixed timestamps, -trimpath), so an unchanged
// binary gives the same image (config digest, i.e. image ID) and the import
// is skipped when containerd already has it. (ctr rewrites the manifest of a
// docker archive, so the manifest digest is not what to compare.) It lives in its own module so that
// go-containerregistry stays out of the project's go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageSpec is one image: the Go package built into it and its config.
type imageSpec struct {
	name   string   // short name: the binary's name in the image and the tarball's
	ref    string   // image reference as pods and containerd name it
	module string   // module directory, relative to the repository root
	pkg    string   // package to build, relative to module
	cmd    []string // default arguments (the image's CMD)
	user   string
	// tarName is the tarball's base name (default: name).
	tarName string
	// optional images are built only when --only names them.
	optional bool
	// labels of the image config (the release sets the OCI annotations).
	labels map[string]string
}

// specs are the images of the dev node. The tags are not "latest", so a pod
// using them gets imagePullPolicy IfNotPresent and never tries a pull.
var specs = []imageSpec{
	// 65535 like the upstream pause image: the sandbox needs no privilege.
	{name: "pause", ref: "loopguard-pause:dev", module: "hack/images", pkg: "./pause", user: "65535:65535"},
	{name: "listener", ref: "loopguard-listener:dev", module: ".", pkg: "./cmd/listener", user: "65532:65532",
		cmd: []string{"--listen", "tcp://0.0.0.0:8080", "--listen", "tcp://127.0.0.1:15000", "--listen", "udp://[::]:5353"}},
	// The manager, as config/overlays/dev runs it; 65532 is distroless's
	// nonroot, as in the Dockerfile and config/manager.
	{name: "manager", ref: "loopguard:dev", module: ".", pkg: "./cmd/manager", user: "65532:65532",
		tarName: "loopguard-manager", optional: true},
	// The node agent (config/agent): root with two capabilities (see
	// config/agent/daemonset.yaml), so its user is 0.
	{name: "agent", ref: "loopguard-agent:dev", module: ".", pkg: "./cmd/agent", user: "0:0",
		tarName: "loopguard-agent", optional: true},
}

const usage = `usage: images build --repo DIR --out DIR [--tar-out DIR] [--address SOCK] [--namespace NS] [--ctr PATH] [--only NAME,...] [--skip-go-build]

Builds the dev node's images into DIR/<name>.tar; with --address, imports
each into that containerd (skipped when it already has the same digest).
The manager image (loopguard:dev) is built only with --only manager, the
agent image (loopguard-agent:dev) only with --only agent.
`

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "release" {
		if err := cmdRelease(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "images release: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "build" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := cmdBuild(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "images build: %v\n", err)
		os.Exit(1)
	}
}

func cmdBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	repo := fs.String("repo", ".", "repository root")
	out := fs.String("out", "bin/images", "output directory for binaries and tarballs")
	tarOut := fs.String("tar-out", "", "output directory for the tarballs (default: --out)")
	address := fs.String("address", "", "containerd socket to import into; empty: build only")
	namespace := fs.String("namespace", "k8s.io", "containerd namespace (k8s.io is the one the CRI plugin uses)")
	ctrBin := fs.String("ctr", "ctr", "ctr binary")
	only := fs.String("only", "", "comma-separated image names to build (default: all)")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall limit (the go builds are the slow part)")
	skipGoBuild := fs.Bool("skip-go-build", false, "reuse the binaries a previous build left in --out")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	root, err := filepath.Abs(*repo)
	if err != nil {
		return fmt.Errorf("--repo: %w", err)
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", outDir, err)
	}
	tarDir := outDir
	if *tarOut != "" {
		if tarDir, err = filepath.Abs(*tarOut); err != nil {
			return fmt.Errorf("--tar-out: %w", err)
		}
		if err := os.MkdirAll(tarDir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", tarDir, err)
		}
	}
	selected, err := selectSpecs(*only)
	if err != nil {
		return err
	}
	for _, s := range selected {
		start := time.Now()
		bin := filepath.Join(outDir, s.name)
		if *skipGoBuild {
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("image %s: --skip-go-build: %w", s.ref, err)
			}
		} else if err := goBuild(ctx, filepath.Join(root, s.module), s.pkg, bin); err != nil {
			return fmt.Errorf("image %s: %w", s.ref, err)
		}
		img, err := buildImage(s, bin)
		if err != nil {
			return fmt.Errorf("image %s: %w", s.ref, err)
		}
		digest, err := img.ConfigName()
		if err != nil {
			return fmt.Errorf("image %s: image ID: %w", s.ref, err)
		}
		tarPath := filepath.Join(tarDir, s.tarFile())
		if err := writeTarball(tarPath, s.ref, img); err != nil {
			return fmt.Errorf("image %s: %w", s.ref, err)
		}
		status := "built"
		if *address != "" {
			imported, err := importImage(ctx, *ctrBin, *address, *namespace, tarPath, s.ref, digest)
			if err != nil {
				return fmt.Errorf("image %s: %w", s.ref, err)
			}
			status = "built, already in containerd"
			if imported {
				status = "built and imported"
			}
		}
		fmt.Printf("%s (image ID %.19s…) %s: %s (%s)\n", s.ref, digest, status, tarPath, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// tarFile is the tarball's file name.
func (s imageSpec) tarFile() string {
	if s.tarName != "" {
		return s.tarName + ".tar"
	}
	return s.name + ".tar"
}

func selectSpecs(only string) ([]imageSpec, error) {
	if only == "" {
		var out []imageSpec
		for _, s := range specs {
			if !s.optional {
				out = append(out, s)
			}
		}
		return out, nil
	}
	var out []imageSpec
	for _, n := range strings.Split(only, ",") {
		found := false
		for _, s := range specs {
			if s.name == n {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("--only: unknown image %q", n)
		}
	}
	return out, nil
}

// goBuild builds a static linux/amd64 binary: the image has no libc, and
// the node is amd64 whatever GOOS/GOARCH the caller's environment says.
func goBuild(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (in %s): %w\n%s", pkg, dir, err, stderr.String())
	}
	return nil
}

// epoch is every timestamp in the image: the same binary, the same digest.
var epoch = time.Unix(0, 0).UTC()

// buildImage puts the binary at /<name> in a single layer on an empty base
// and makes it the entrypoint.
func buildImage(s imageSpec, binPath string) (v1.Image, error) {
	return buildImageFor(s, binPath, "amd64", false)
}

// buildImageFor builds the image of one architecture; oci gives it OCI
// media types (the release's image index), else Docker's (docker-archive).
func buildImageFor(s imageSpec, binPath, arch string, oci bool) (v1.Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	layerTar, err := singleFileTar(s.name, bin)
	if err != nil {
		return nil, err
	}
	base, layerOpts := empty.Image, []tarball.LayerOption{}
	if oci {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		layerOpts = append(layerOpts, tarball.WithMediaType(types.OCILayer))
	}
	if oci {
		// Compressed once here: given gzip, the layer is not compressed
		// again for its digest and again for its blob.
		if layerTar, err = gzipBytes(layerTar); err != nil {
			return nil, err
		}
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, layerOpts...)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Labels = s.labels
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{"/" + s.name}
	cf.Config.Cmd = s.cmd
	cf.Config.User = s.user
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/"}
	cf.History = []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "hack/images: static Go binary " + s.pkg}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// singleFileTar is a tar with one root-owned executable file.
func singleFileTar(fileName string, content []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Name: fileName, Mode: 0o755, Size: int64(len(content)),
		ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("tar header: %w", err)
	}
	if _, err := tw.Write(content); err != nil {
		return nil, fmt.Errorf("tar content: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar close: %w", err)
	}
	return buf.Bytes(), nil
}

// writeTarball writes a docker-archive (docker save format), which ctr
// imports under the tag it names.
func writeTarball(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("parse %q: %w", ref, err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// containerdName is how containerd names a short docker reference.
func containerdName(ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", ref, err)
	}
	reg := tag.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io" // containerd's spelling of Docker Hub
	}
	return reg + "/" + tag.RepositoryStr() + ":" + tag.TagStr(), nil
}

// importImage imports the tarball unless containerd already has the image
// with that image ID; it reports whether it imported.
func importImage(ctx context.Context, ctrBin, address, namespace, tarPath, ref string, imageID v1.Hash) (bool, error) {
	full, err := containerdName(ref)
	if err != nil {
		return false, err
	}
	base := []string{"--address", address, "--namespace", namespace}
	current, err := storedImageID(ctx, ctrBin, base, full)
	if err != nil {
		return false, err
	}
	if current == imageID.String() {
		return false, nil
	}
	if _, err := runCtr(ctx, ctrBin, append(base, "images", "import", "--platform", "linux/amd64", tarPath)...); err != nil {
		return false, err
	}
	// Check rather than trust: an import that stored another name (a
	// normalisation surprise) would make every pod try a pull.
	current, err = storedImageID(ctx, ctrBin, base, full)
	if err != nil {
		return false, err
	}
	if current != imageID.String() {
		return false, fmt.Errorf("after importing %s, containerd has %s with image ID %q, want %s", tarPath, full, current, imageID)
	}
	return true, nil
}

// storedImageID returns the config digest of image full in containerd, ""
// if it has no such image.
func storedImageID(ctx context.Context, ctrBin string, base []string, full string) (string, error) {
	ls, err := runCtr(ctx, ctrBin, append(base, "images", "ls", "name=="+full)...)
	if err != nil {
		return "", err
	}
	manifest, err := listedDigest(ls, full)
	if err != nil || manifest == "" {
		return "", err
	}
	raw, err := runCtr(ctx, ctrBin, append(base, "content", "get", manifest)...)
	if err != nil {
		return "", err
	}
	m, err := v1.ParseManifest(strings.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("manifest %s of %s: %w", manifest, full, err)
	}
	return m.Config.Digest.String(), nil
}

// listedDigest parses `ctr images ls` output (REF TYPE DIGEST SIZE ...)
// and returns the manifest digest of ref, "" if it is not listed.
func listedDigest(ls, ref string) (string, error) {
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "REF") {
		return "", fmt.Errorf("unexpected ctr images ls output:\n%s", ls)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == ref {
			return f[2], nil
		}
	}
	return "", nil
}

func runCtr(ctx context.Context, ctrBin string, args ...string) (string, error) {
	// Each call is short; the limit keeps a wedged containerd from hanging up.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctrBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out)", err)
		}
		return "", fmt.Errorf("%s %s: %w\n%s", ctrBin, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}
