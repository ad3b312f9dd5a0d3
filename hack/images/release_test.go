package main

import (
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// A release image archive, unpacked, is an OCI layout that a registry
// takes as it is (what `crane push DIR REF` does): the pushed index has the
// digest of images.txt and both architectures.
func TestReleaseImageArchivePushable(t *testing.T) {
	dir := t.TempDir()
	r := &release{work: dir, version: "v1.2.3", commit: "abc", registry: "ghcr.io/loopguard"}
	for _, p := range linuxPlatforms {
		bin := r.binPath(p, "listener")
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, []byte("binary for "+p.arch), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := releaseBinaries[len(releaseBinaries)-1]
	idx, err := r.releaseImage(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	archive := filepath.Join(dir, "listener.oci.tar")
	if err := writeImageArchive(archive, dir, idx, r.imageRef(b.image), r.version, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "unpacked")
	if err := os.MkdirAll(unpacked, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xf", archive, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	lp, err := layout.FromPath(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index.json: %v, %v", im, err)
	}
	inner, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(registry.New()) // loopback only
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref, err := name.ParseReference(u.Host + "/team/loopguard-listener:v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, inner); err != nil {
		t.Fatalf("push: %v", err)
	}
	pulled, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pulled.Digest()
	if got != want {
		t.Errorf("pushed index %s, built %s", got, want)
	}
	pm, _ := pulled.IndexManifest()
	var archs []string
	for _, m := range pm.Manifests {
		archs = append(archs, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	if len(archs) != 2 || archs[0] != "linux/amd64" || archs[1] != "linux/arm64" {
		t.Errorf("pushed platforms %v", archs)
	}
}
