package main

// `images release`: the whole of a versioned release, from the repository
// alone (no Docker, no registry, no network once the module cache holds
// the modules of go.mod):
//
//	images release --repo DIR --version vX.Y.Z --out DIR [--registry R] [--helm BIN] [--sbom-tool BIN]
//
// writes into --out (make release: dist/release):
//
//	<bin>_<version>_<os>_<arch>.tar.gz   the binary, LICENSE and README.md (krew's layout)
//	images/<name>.oci.tar                an OCI image layout with a linux/amd64+arm64 index
//	images.txt                           reference@digest and archive of each image
//	sbom/<name>.cdx.json                 CycloneDX SBOM of each image's binary
//	install.yaml                         config/default with the manager image of the release
//	loopguard-<X.Y.Z>.tgz                the Helm chart, version X.Y.Z, appVersion vX.Y.Z
//	krew/loopguard.yaml                  the krew manifest, with each archive's sha256
//	checksums.txt                        sha256 of every file above (sha256sum -c)

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "_" + p.arch }

var (
	linuxPlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}}
	allPlatforms   = []platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}
)

// releaseBinary is one binary of the release: archived for each of
// archived, built (for an image) for each of built.
type releaseBinary struct {
	name, pkg string
	archived  []platform
	image     string // the image's repository name under --registry; "" for none
}

var releaseBinaries = []releaseBinary{
	{name: "manager", pkg: "./cmd/manager", archived: linuxPlatforms, image: "loopguard"},
	{name: "agent", pkg: "./cmd/agent", archived: linuxPlatforms, image: "loopguard-agent"},
	{name: "loopguard", pkg: "./cmd/loopguard", archived: allPlatforms},
	{name: "kubectl-loopguard", pkg: "./cmd/kubectl-loopguard", archived: allPlatforms},
	// The test workload the quickstart uses; an image only.
	{name: "listener", pkg: "./cmd/listener", image: "loopguard-listener"},
}

var semverRE = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`)

type release struct {
	root, out, work string
	version, commit string
	registry        string
	helm, sbomTool  string
	epoch           time.Time // every timestamp: the commit's
	skipGoBuild     bool
}

func cmdRelease(args []string) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	var r release
	fs.StringVar(&r.root, "repo", ".", "repository root")
	fs.StringVar(&r.version, "version", "", "the release version, vX.Y.Z")
	fs.StringVar(&r.out, "out", "dist/release", "output directory (emptied first)")
	fs.StringVar(&r.work, "work", "", "directory for the binaries (default: <repo>/bin/release/<version>)")
	fs.StringVar(&r.registry, "registry", "ghcr.io/loopguard", "registry and path the images are named under")
	fs.StringVar(&r.helm, "helm", "bin/helm", "helm binary (packages the chart)")
	fs.StringVar(&r.sbomTool, "sbom-tool", "bin/cyclonedx-gomod", "cyclonedx-gomod binary")
	timeout := fs.Duration("timeout", 4*time.Hour, "overall limit (cross-compiling on a busy machine is slow)")
	fs.BoolVar(&r.skipGoBuild, "skip-go-build", false, "reuse the binaries a previous release of the same version left in --work")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !semverRE.MatchString(r.version) {
		return fmt.Errorf("--version %q: want vMAJOR.MINOR.PATCH[-PRERELEASE]", r.version)
	}
	var err error
	if r.root, err = filepath.Abs(r.root); err != nil {
		return err
	}
	if r.out, err = filepath.Abs(r.out); err != nil {
		return err
	}
	if rel, err := filepath.Rel(r.out, r.root); err != nil || !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("--out %s holds the repository: it is emptied first", r.out)
	}
	// The tools are relative to the repository.
	for _, p := range []*string{&r.helm, &r.sbomTool} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(r.root, *p)
		}
	}
	if r.work == "" {
		r.work = filepath.Join(r.root, "bin", "release", r.version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r.commit, r.epoch = gitCommit(ctx, r.root)
	return r.run(ctx)
}

// gitCommit is HEAD's short hash and commit time ("unknown" and the Unix
// epoch outside a git checkout).
func gitCommit(ctx context.Context, root string) (string, time.Time) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%h %ct").Output()
	if err != nil {
		return "unknown", epoch
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "unknown", epoch
	}
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return f[0], epoch
	}
	return f[0], time.Unix(sec, 0).UTC()
}

func (r *release) run(ctx context.Context) error {
	if err := os.RemoveAll(r.out); err != nil {
		return err
	}
	for _, d := range []string{r.out, filepath.Join(r.out, "images"), filepath.Join(r.out, "sbom"), filepath.Join(r.out, "krew")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"binaries", r.buildBinaries},
		{"archives", r.writeArchives},
		{"images", r.writeImages},
		{"SBOMs", r.writeSBOMs},
		{"install.yaml", r.writeInstall},
		{"chart", r.writeChart},
		{"krew manifest", r.writeKrew},
		{"checksums", r.writeChecksums},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Printf("release %s: %s (%s)\n", r.version, s.name, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// platformsToBuild lists, per platform, the packages to build: every
// archived binary, and every image's binary for linux/amd64 and arm64.
func platformsToBuild() map[platform][]releaseBinary {
	m := map[platform][]releaseBinary{}
	for _, b := range releaseBinaries {
		ps := slices.Clone(b.archived)
		if b.image != "" {
			for _, p := range linuxPlatforms {
				if !slices.Contains(ps, p) {
					ps = append(ps, p)
				}
			}
		}
		for _, p := range ps {
			m[p] = append(m[p], b)
		}
	}
	return m
}

func (r *release) binPath(p platform, name string) string {
	return filepath.Join(r.work, p.String(), name)
}

// buildBinaries builds each binary once per platform: one go build per
// platform (the packages share its compiled dependencies), static,
// -trimpath, with the version stamped.
func (r *release) buildBinaries(ctx context.Context) error {
	ldflags := fmt.Sprintf("-s -w -X github.com/loopguard/loopguard/internal/version.Version=%s -X github.com/loopguard/loopguard/internal/version.Commit=%s", r.version, r.commit)
	m := platformsToBuild()
	for _, p := range allPlatforms {
		bins := m[p]
		if len(bins) == 0 {
			continue
		}
		if r.skipGoBuild {
			for _, b := range bins {
				if _, err := os.Stat(r.binPath(p, b.name)); err != nil {
					return fmt.Errorf("--skip-go-build: %w", err)
				}
			}
			continue
		}
		dir := filepath.Join(r.work, p.String())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", dir + "/"}
		for _, b := range bins {
			args = append(args, b.pkg)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = r.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch, "GOFLAGS=-mod=readonly")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build for %s: %w\n%s", p, err, out)
		}
		fmt.Printf("  built %d binaries for %s (%s)\n", len(bins), p, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// archiveName is the name of a binary's archive.
func (r *release) archiveName(name string, p platform) string {
	return fmt.Sprintf("%s_%s_%s.tar.gz", name, r.version, p)
}

func (r *release) writeArchives(context.Context) error {
	license, err := os.ReadFile(filepath.Join(r.root, "LICENSE"))
	if err != nil {
		return err
	}
	readme, err := os.ReadFile(filepath.Join(r.root, "README.md"))
	if err != nil {
		return err
	}
	for _, b := range releaseBinaries {
		for _, p := range b.archived {
			bin, err := os.ReadFile(r.binPath(p, b.name))
			if err != nil {
				return err
			}
			files := []archiveFile{{b.name, 0o755, bin}, {"LICENSE", 0o644, license}, {"README.md", 0o644, readme}}
			if err := writeTarGz(filepath.Join(r.out, r.archiveName(b.name, p)), files, r.epoch); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeChecksums writes checksums.txt: `<sha256>  <path>` for every other
// file of the release, sorted by path (sha256sum -c checks it).
func (r *release) writeChecksums(context.Context) error {
	var lines []string
	err := filepath.WalkDir(r.out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(r.out, path)
		if rel == "checksums.txt" {
			return nil
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return err
		}
		lines = append(lines, sum+"  "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	return os.WriteFile(filepath.Join(r.out, "checksums.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runIn runs a command in dir, with its output in the error.
func runIn(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
