package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestImageIsOneStaticBinaryWithEntrypoint(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "listener")
	if err := os.WriteFile(bin, []byte("\x7fELF fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := specs[1]
	img, err := buildImage(s, bin)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "listener.tar")
	if err := writeTarball(tarPath, s.ref, img); err != nil {
		t.Fatal(err)
	}
	// Read back what ctr will import.
	got, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatalf("read tarball: %v", err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/listener"}) || !slices.Equal(cf.Config.Cmd, s.cmd) {
		t.Errorf("entrypoint %v cmd %v, want [/listener] %v", cf.Config.Entrypoint, cf.Config.Cmd, s.cmd)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want exactly one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "listener" || hdr.Mode&0o111 == 0 {
		t.Errorf("layer entry %q mode %o, want an executable 'listener'", hdr.Name, hdr.Mode)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("layer has more than one entry (next: %v)", err)
	}

	// Reproducible: the same binary gives the same digest, so an up with
	// nothing changed skips the import.
	again, err := buildImage(s, bin)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.ConfigName()
	d2, _ := again.ConfigName()
	if d1 != d2 {
		t.Errorf("two builds of one binary: %s and %s", d1, d2)
	}
}

func TestContainerdName(t *testing.T) {
	for ref, want := range map[string]string{
		"loopguard-listener:dev":        "docker.io/library/loopguard-listener:dev",
		"example.test/team/pause:3.10":  "example.test/team/pause:3.10",
		"index.docker.io/library/x:dev": "docker.io/library/x:dev",
	} {
		got, err := containerdName(ref)
		if err != nil || got != want {
			t.Errorf("containerdName(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

func TestListedDigest(t *testing.T) {
	ls := "REF                                       TYPE                                                 DIGEST                                                                  SIZE    PLATFORMS   LABELS\n" +
		"docker.io/library/loopguard-listener:dev application/vnd.docker.distribution.manifest.v2+json sha256:aaaa 1.2 MiB linux/amd64 -\n"
	if d, err := listedDigest(ls, "docker.io/library/loopguard-listener:dev"); err != nil || d != "sha256:aaaa" {
		t.Errorf("listed image: %q, %v; want sha256:aaaa", d, err)
	}
	if d, err := listedDigest(ls, "docker.io/library/other:dev"); err != nil || d != "" {
		t.Errorf("unlisted image: %q, %v; want empty", d, err)
	}
	if d, _ := listedDigest("REF TYPE DIGEST SIZE PLATFORMS LABELS\n", "x"); d != "" {
		t.Error("empty list reported the image")
	}
	if _, err := listedDigest("garbage", "x"); err == nil {
		t.Error("garbage output accepted")
	}
}
