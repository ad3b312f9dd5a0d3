package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestManagerImage builds the real manager image as `make image` does
// (go build of ./cmd/manager, then the tarball), reads it back as a
// container runtime would, and runs the binary from its layer with --help.
func TestManagerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/manager")
	}
	dir := t.TempDir()
	t0 := time.Now()
	if err := cmdBuild([]string{"--repo", "../..", "--out", dir, "--tar-out", filepath.Join(dir, "dist"), "--only", "manager"}); err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Logf("built the manager image in %s", time.Since(t0).Round(100*time.Millisecond))
	tarPath := filepath.Join(dir, "dist", "loopguard-manager.tar")
	tag, _ := name.NewTag("loopguard:dev")
	img, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatalf("read %s as loopguard:dev: %v", tarPath, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/manager"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %v cmd %v, want [/manager] and no cmd", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created %v, want the fixed epoch %v (reproducible)", cf.Created.Time, epoch)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one (empty base, no shell)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var bin []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != "manager" {
			t.Errorf("layer has %q: want only the manager binary", hdr.Name)
			continue
		}
		if hdr.Uid != 0 || hdr.Mode&0o111 == 0 || !hdr.ModTime.Equal(epoch) {
			t.Errorf("manager: uid %d mode %o mtime %v", hdr.Uid, hdr.Mode, hdr.ModTime)
		}
		if bin, err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	if len(bin) == 0 {
		t.Fatal("no manager binary in the layer")
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		t.Fatal("manager is not an ELF binary")
	}
	// Static: no program interpreter (PT_INTERP names the dynamic loader).
	if bytes.Contains(bin, []byte("/lib64/ld-linux")) || bytes.Contains(bin, []byte("/lib/ld-musl")) {
		t.Error("manager is dynamically linked: want CGO_ENABLED=0")
	}
	exe := filepath.Join(dir, "extracted-manager")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("/manager --help: %v\n%s", err, out)
	}
	for _, f := range []string{"-cert-rotation", "-cert-secret-name", "-webhook-service-name", "-webhook-config-name"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("--help does not list %s:\n%s", f, out)
		}
	}

	// Reproducible: the same binary gives byte-identical tarballs.
	spec, _ := selectSpecs("manager")
	again, err := buildImage(spec[0], filepath.Join(dir, "manager"))
	if err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(dir, "again.tar")
	if err := writeTarball(second, spec[0].ref, again); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(tarPath)
	b, _ := os.ReadFile(second)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same binary differ: not reproducible")
	}
}

func TestManagerImageIsOptional(t *testing.T) {
	all, err := selectSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.name == "manager" {
			t.Error("the default build (hack/dev.sh's node images) includes the manager")
		}
	}
}
