package main

import (
	"archive/tar"
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

// TestAgentImage builds the node agent's image as `make image-agent` does
// and checks what config/agent relies on: /agent as the entrypoint, user
// 0 (its two capabilities are dropped at exec for any other user), one
// layer, and a binary that runs and knows the agent's flags. It is not in
// the default build.
func TestAgentImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/agent")
	}
	all, err := selectSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.name == "agent" {
			t.Error("the default build (hack/dev.sh's node images) includes the agent")
		}
	}
	dir := t.TempDir()
	if err := cmdBuild([]string{"--repo", "../..", "--out", dir, "--tar-out", filepath.Join(dir, "dist"), "--only", "agent"}); err != nil {
		t.Fatalf("build: %v", err)
	}
	tag, _ := name.NewTag("loopguard-agent:dev")
	img, err := tarball.ImageFromPath(filepath.Join(dir, "dist", "loopguard-agent.tar"), &tag)
	if err != nil {
		t.Fatalf("read the tarball as loopguard-agent:dev: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/agent"}) || cf.Config.User != "0:0" {
		t.Errorf("entrypoint %v user %q, want [/agent] and 0:0", cf.Config.Entrypoint, cf.Config.User)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "agent" {
		t.Fatalf("first entry %v, %v; want the agent binary", hdr, err)
	}
	exe := filepath.Join(dir, "extracted-agent")
	bin, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("/agent --help: %v\n%s", err, out)
	}
	for _, f := range []string{"-node-name", "-proc-root", "-cgroup-root", "-scan-interval", "-report-refresh"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("--help does not list %s:\n%s", f, out)
		}
	}
}
